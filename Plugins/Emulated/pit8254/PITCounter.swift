/// One 8254 counter: its programming, the count register (CR), output latch, status latch, and a
/// counting element (CE) whose contents and OUT level are computed from the tick timeline instead
/// of being decremented per CLK edge.
///
/// The CE's progress is kept as a load tick `loadTick` and an initial count `initial` (N, 1...65536):
/// `decrements(t) = t - loadTick` edges have been counted by tick t (the load edge itself does not
/// decrement, as the datasheet says). Gate-paused counting holds the decrements in `frozen`; a
/// resumed count moves `loadTick` back by what was already counted, so it may name a tick that
/// never happened ("virtual"). Modes 2 and 3 take a count written while they run at the end of the
/// current period (half-cycle in mode 3): `reloadTick`, applied lazily by `timeline(at:)`.
///
/// Every method takes the current tick; none reads a clock.
struct PITCounter {
    // Control word.
    var modeBits: UInt8 = 0
    /// RW bits: 1 LSB only, 2 MSB only, 3 LSB then MSB.
    var access: UInt8 = 3
    var bcd = false

    // Count register and the byte flip-flops.
    var countRegister: UInt16 = 0
    /// A complete count was written since the last control word (modes 1, 2, 3, 5 need one to trigger).
    var hasCount = false
    var writeHighNext = false
    var pendingLowByte: UInt8 = 0
    var readHighNext = false

    // Output latch and status latch.
    var countLatched = false
    var latchedCount: UInt16 = 0
    var statusLatched = false
    var latchedStatus: UInt8 = 0

    /// NULL COUNT: CR written but not yet moved into the CE; `transferTick` is when it will be,
    /// nil while that waits for a gate trigger.
    var countRegisterPending = true
    var transferTick: UInt64?

    // Counting element.
    /// false: no counting sequence (after a control word, or a mode 1/5 counter never triggered).
    var active = false
    /// What the CE holds while inactive or before a scheduled load.
    var heldValue: UInt16 = 0
    var loadTick: UInt64 = 0
    var initial: UInt32 = 0x10000
    /// OUT between scheduling a load and the load edge.
    var outputBeforeLoad = false
    var frozen: UInt64?
    var reloadTick: UInt64?

    /// Not saved: channels 0 and 1 are tied high, channel 2 follows port 0x61 bit 0.
    var gate: Bool

    init(gate: Bool) { self.gate = gate }

    // MARK: derived values (pure)

    /// Modes 6 and 7 are aliases of 2 and 3.
    var mode: UInt8 { modeBits >= 6 ? modeBits - 4 : modeBits }
    var isPeriodic: Bool { mode == 2 || mode == 3 }
    var modulus: UInt64 { bcd ? 10_000 : 0x10000 }

    /// N from the CR: 0 is the largest count; a BCD count with non-decimal nibbles is taken digit
    /// by digit at face value (undefined on the chip, merely bounded here).
    var initialFromCountRegister: UInt32 {
        guard countRegister != 0 else { return UInt32(modulus) }
        guard bcd else { return UInt32(countRegister) }
        let r = UInt32(countRegister)
        return (r >> 12) * 1000 + (r >> 8 & 0xF) * 100 + (r >> 4 & 0xF) * 10 + (r & 0xF)
    }

    /// Mode 3 keeps OUT high for ceil(N/2) ticks of each period.
    static func highLength(_ n: UInt64) -> UInt64 { (n + 1) / 2 }

    struct Timeline {
        var load: UInt64
        var initial: UInt32
    }

    func timeline(at t: UInt64) -> Timeline {
        if let r = reloadTick, PITClock.distance(from: r, to: t) >= 0 { return reloadedTimeline(at: r) }
        return Timeline(load: loadTick, initial: initial)
    }

    /// The timeline a mode 2/3 reload at `r` starts. A mode 3 reload at a falling boundary starts
    /// the new count in its low half, expressed as a virtual load `highLength` ticks earlier.
    private func reloadedTimeline(at r: UInt64) -> Timeline {
        let next = initialFromCountRegister
        if mode == 3 {
            let n = UInt64(initial)
            let phase = UInt64(max(0, PITClock.distance(from: loadTick, to: r))) % n
            if phase == Self.highLength(n), n > 1 {
                return Timeline(load: r &- Self.highLength(UInt64(next)), initial: next)
            }
        }
        return Timeline(load: r, initial: next)
    }

    /// The timeline and the decrements counted by tick t, or nil when no count is loaded.
    func progress(at t: UInt64) -> (timeline: Timeline, decrements: UInt64)? {
        guard active else { return nil }
        let line = timeline(at: t)
        let elapsed = PITClock.distance(from: line.load, to: t)
        guard elapsed >= 0 else { return nil }
        return (line, frozen ?? UInt64(elapsed))
    }

    func output(at t: UInt64) -> Bool {
        guard active else { return mode != 0 }
        guard let (line, decrements) = progress(at: t) else { return outputBeforeLoad }
        if frozen != nil, isPeriodic { return true }
        let n = UInt64(line.initial)
        switch mode {
        case 0, 1: return decrements >= n
        case 2: return decrements % n != n - 1
        case 3: return decrements % n < Self.highLength(n)
        default: return decrements != n
        }
    }

    /// The CE contents in binary.
    func value(at t: UInt64) -> UInt16 {
        guard let (line, decrements) = progress(at: t) else { return heldValue }
        let m = modulus, n = UInt64(line.initial)
        let raw: UInt64
        switch mode {
        case 2:
            raw = n - decrements % n
        case 3:
            // Decrements by two; an odd N loads N-1 and spends the extra tick in the high half.
            let phase = decrements % n, high = Self.highLength(n)
            let top = n % 2 == 0 ? n : n - 1
            raw = phase < high ? top - 2 * phase : top - 2 * (phase - high)
        default:
            // One-shot modes keep counting down past zero, wrapping.
            raw = n + m - decrements % m
        }
        return UInt16(raw % m)
    }

    /// The CE as the guest reads it: in BCD when counting in BCD.
    func readableValue(at t: UInt64) -> UInt16 {
        let v = value(at: t)
        guard bcd else { return v }
        let d = UInt16(v % 10_000)
        // Swift's shifts bind tighter than division: every digit is parenthesised.
        return (d / 1000) << 12 | (d / 100 % 10) << 8 | (d / 10 % 10) << 4 | d % 10
    }

    func nullCount(at t: UInt64) -> Bool {
        guard countRegisterPending else { return false }
        guard let x = transferTick else { return true }
        return PITClock.distance(from: x, to: t) < 0
    }

    /// The read-back status byte.
    func status(at t: UInt64) -> UInt8 {
        (output(at: t) ? 0x80 : 0) | (nullCount(at: t) ? 0x40 : 0) | access << 4 | modeBits << 1 | (bcd ? 1 : 0)
    }

    /// The first tick after `t` at which OUT rises, if the counter is set to produce one.
    func nextRisingEdge(after t: UInt64) -> UInt64? {
        guard active, frozen == nil else { return nil }
        if let r = reloadTick, PITClock.distance(from: t, to: r) > 0 {
            let current = Timeline(load: loadTick, initial: initial)
            if let e = firstRisingEdge(on: current, after: t), PITClock.distance(from: e, to: r) >= 0 { return e }
            return firstRisingEdge(on: reloadedTimeline(at: r), after: r)
        }
        return firstRisingEdge(on: timeline(at: t), after: t)
    }

    private func firstRisingEdge(on line: Timeline, after t: UInt64) -> UInt64? {
        let n = UInt64(line.initial)
        let edge: UInt64
        switch mode {
        case 0, 1: edge = line.load &+ n
        case 4, 5: edge = line.load &+ n &+ 1
        default:
            // N = 1 is illegal in modes 2 and 3: OUT never changes.
            guard n > 1 else { return nil }
            let elapsed = PITClock.distance(from: line.load, to: t)
            edge = elapsed < 0 ? line.load &+ n : line.load &+ (UInt64(elapsed) / n + 1) * n
        }
        return PITClock.distance(from: t, to: edge) > 0 ? edge : nil
    }

    // MARK: bookkeeping

    /// Applies due transfers and reloads, and shrinks the progress to its smallest equivalent so
    /// that saved offsets stay bounded. Observable behaviour is unchanged, but edges before `t` are
    /// forgotten: the device delivers those first.
    mutating func normalize(at t: UInt64) {
        if countRegisterPending, let x = transferTick, PITClock.distance(from: x, to: t) >= 0 {
            countRegisterPending = false
            transferTick = nil
        }
        if let r = reloadTick, PITClock.distance(from: r, to: t) >= 0 {
            let line = reloadedTimeline(at: r)
            loadTick = line.load
            initial = line.initial
            reloadTick = nil
        }
        guard active else { return }
        let elapsed = PITClock.distance(from: loadTick, to: t)
        guard elapsed >= 0 else { return }
        if let f = frozen {
            frozen = reduced(f)
        } else {
            loadTick = t &- reduced(UInt64(elapsed))
        }
    }

    func normalized(at t: UInt64) -> PITCounter {
        var copy = self
        copy.normalize(at: t)
        return copy
    }

    /// The smallest decrement count that reads and outputs the same.
    private func reduced(_ decrements: UInt64) -> UInt64 {
        let n = UInt64(initial)
        if isPeriodic { return decrements % n }
        guard decrements > n + 1 else { return decrements }
        return n + 1 + (decrements - n - 1) % modulus
    }

    // MARK: guest operations

    mutating func writeControl(modeBits: UInt8, access: UInt8, bcd: Bool, at t: UInt64) {
        normalize(at: t)
        heldValue = value(at: t)
        active = false
        frozen = nil
        reloadTick = nil
        outputBeforeLoad = false
        self.modeBits = modeBits & 7
        self.access = access
        self.bcd = bcd
        writeHighNext = false
        pendingLowByte = 0
        readHighNext = false
        releaseCountLatch()
        statusLatched = false
        latchedStatus = 0
        countRegisterPending = true
        transferTick = nil
        hasCount = false
    }

    /// Counter latch command; ignored while a latched count is still unread.
    mutating func latchCount(at t: UInt64) {
        guard !countLatched else { return }
        countLatched = true
        latchedCount = readableValue(at: t)
    }

    mutating func latchStatus(at t: UInt64) {
        guard !statusLatched else { return }
        statusLatched = true
        latchedStatus = status(at: t)
    }

    private mutating func releaseCountLatch() {
        countLatched = false
        latchedCount = 0
    }

    /// A read of the counter's port: a latched status first, then the latched or live count,
    /// byte by byte as RW says.
    mutating func readByte(at t: UInt64) -> UInt8 {
        if statusLatched {
            defer { statusLatched = false; latchedStatus = 0 }
            return latchedStatus
        }
        let v = countLatched ? latchedCount : readableValue(at: t)
        let low = UInt8(truncatingIfNeeded: v), high = UInt8(truncatingIfNeeded: v >> 8)
        switch access {
        case 1:
            releaseCountLatch()
            return low
        case 2:
            releaseCountLatch()
            return high
        default:
            readHighNext.toggle()
            if readHighNext { return low }
            releaseCountLatch()
            return high
        }
    }

    mutating func writeByte(_ byte: UInt8, at t: UInt64) {
        normalize(at: t)
        switch access {
        case 1:
            countRegister = UInt16(byte)
        case 2:
            countRegister = UInt16(byte) << 8
        default:
            guard writeHighNext else {
                pendingLowByte = byte
                writeHighNext = true
                // Mode 0: the first byte stops counting and drops OUT at once.
                if mode == 0 { stopCounting(at: t) }
                return
            }
            countRegister = UInt16(byte) << 8 | UInt16(pendingLowByte)
            writeHighNext = false
            pendingLowByte = 0
        }
        countWritten(at: t)
    }

    private mutating func stopCounting(at t: UInt64) {
        heldValue = value(at: t)
        active = false
        frozen = nil
        reloadTick = nil
        outputBeforeLoad = false
    }

    private mutating func countWritten(at t: UInt64) {
        hasCount = true
        countRegisterPending = true
        transferTick = nil
        switch mode {
        case 0, 4:
            // Loaded on the next CLK edge, whatever the gate; a low gate holds the count there.
            scheduleLoad(at: t, outputBefore: mode == 0 ? false : output(at: t))
            if !gate { frozen = 0 }
        case 2, 3:
            if active, frozen == nil, let (_, decrements) = progress(at: t) {
                // Running: the current period (mode 3: half-cycle) finishes with the old count.
                if reloadTick == nil {
                    let n = UInt64(initial), phase = decrements % n, high = Self.highLength(n)
                    let remaining = mode == 3 && phase < high ? high - phase : n - phase
                    reloadTick = t &+ remaining
                }
                transferTick = reloadTick
            } else if active, frozen != nil, progress(at: t) != nil {
                // Gate low after a load: the gate's rising edge loads the new count.
            } else {
                scheduleLoad(at: t, outputBefore: true)
                if !gate { frozen = 0 }
            }
        default:
            break // Modes 1 and 5 load the CR on a gate trigger.
        }
    }

    /// Loads the CR into the CE on the CLK edge after `t`.
    private mutating func scheduleLoad(at t: UInt64, outputBefore: Bool) {
        heldValue = value(at: t)
        outputBeforeLoad = outputBefore
        active = true
        loadTick = t &+ 1
        initial = initialFromCountRegister
        frozen = nil
        reloadTick = nil
        if countRegisterPending { transferTick = loadTick }
    }

    mutating func setGate(_ level: Bool, at t: UInt64) {
        normalize(at: t)
        guard level != gate else { return }
        gate = level
        switch mode {
        case 0, 4:
            guard active else { return }
            if level {
                guard let f = frozen else { return }
                if PITClock.distance(from: loadTick, to: t) >= 0 { loadTick = t &- f }
                frozen = nil
            } else if frozen == nil {
                frozen = progress(at: t)?.decrements ?? 0
            }
        case 2, 3:
            if level {
                // A trigger: reload on the next CLK with OUT high (a low gate forced it high).
                if hasCount { scheduleLoad(at: t, outputBefore: true) }
            } else if active, frozen == nil {
                frozen = progress(at: t)?.decrements ?? 0
                if reloadTick != nil {
                    reloadTick = nil
                    transferTick = nil
                }
            }
        default:
            // Modes 1 and 5: a rising edge (re)triggers; OUT keeps its level until the load edge.
            if level, hasCount { scheduleLoad(at: t, outputBefore: output(at: t)) }
        }
    }
}
