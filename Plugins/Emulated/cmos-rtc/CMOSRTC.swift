import VeneerPluginKit

/// A Motorola MC146818A real-time clock with 114 bytes of CMOS RAM, as a PC wires it: index port
/// 0x70 (bit 7 the NMI mask, kept but without effect here), data port 0x71, IRQ 8.
///
/// Time is lazy: while the clock runs, the clock registers are computed from the host clock
/// (`origin`, a divider-chain second boundary in host nanoseconds, and `timeAtOrigin`), so
/// nothing ticks per second. While it is halted (SET, or the divider held in reset) they are
/// plain bytes in `cmos`, holding whatever the guest wrote; restarting parses them back, carrying
/// out-of-range values over as QEMU does. Reads always show the time in the current register B
/// format, also after the guest changes the format while the clock runs (the chip would keep
/// the old encoding and count in the new one).
///
/// Flags are lazy too: PF, AF and UF accumulate over the interval since the last sync and are
/// brought up to date before anything that depends on them. One host timer is armed only while
/// an enabled interrupt could assert IRQ 8 and the line is still low. Register A's divider
/// select is honoured only as "running" (000, 001, 010) or "stopped" (anything else); periodic
/// rates are those of the PC's 32.768 kHz time base. DSE and SQWE are stored without effect: no
/// 1980s US daylight-saving rule, no square-wave pin.
final class CMOSRTC: VeneerDevice {
    enum StartTime {
        case hostClock
        case fixed(seconds: Int64)
    }

    static let updateTimer: UInt64 = 1
    static let flushWork: UInt64 = 1
    static let second: Int64 = 1_000_000_000
    /// UIP rises this long before each update (the datasheet's tBUC at 32.768 kHz).
    static let updateWarning: Int64 = 244_000
    static let dividerHertz: Int64 = 32_768

    let host: HostServices
    let irqLine: UInt32
    let nvramFile: NVRAMFile?

    // Guest-visible state (saved).
    /// The register file: A without UIP, B, C's flags, NVRAM, and the clock registers while halted.
    private var cmos = InlineArray<128, UInt8>(repeating: 0)
    private var index: UInt8 = 0
    private var nmiDisabled = false
    /// Host time of a divider-chain second boundary; meaningful while the divider runs.
    private var origin: Int64 = 0
    /// The clock's time at `origin`; meaningful while the clock runs.
    private var timeAtOrigin: Int64 = 0
    private var weekdayOffset: Int64 = 0

    // Host bookkeeping (not saved).
    /// C's flags are up to date as of this host time.
    private var lastSync: Int64 = 0
    private var irqAsserted = false
    private var running = false
    private var armedDeadline: Int64?
    private var nvramDirty = false
    private var flushPosted = false
    private var nvramFailing = false

    init(host: HostServices, irq: UInt32, start: StartTime, nvram: NVRAMFile?) throws(PluginError) {
        self.host = host
        irqLine = irq
        nvramFile = nvram
        if let image = try nvram?.read() {
            for i in 0..<RTCRegister.count where RTCRegister.isNVRAM(i) { cmos[i] = image[i] }
        }
        try host.registerPortIO(region: 0, port: 0x70, length: 2)
        cmos[RTCRegister.a] = RegisterA.powerOn
        cmos[RTCRegister.b] = RegisterB.powerOn
        cmos[RTCRegister.d] = RegisterD.value
        let now = currentTime
        switch start {
        case .hostClock:
            let wall = hostWallClock()
            // Align updates with the host's own second boundaries.
            origin = now - wall.nanoseconds
            timeAtOrigin = wall.seconds
        case .fixed(let seconds):
            origin = now
            timeAtOrigin = seconds
        }
        lastSync = now
    }

    private var currentTime: Int64 { Int64(bitPattern: host.now) }

    // MARK: derived state

    private var registerA: UInt8 { cmos[RTCRegister.a] }
    private var registerB: UInt8 { cmos[RTCRegister.b] }
    private var format: RegisterFormat { RegisterFormat(registerB: registerB) }
    private static func dividerRuns(_ a: UInt8) -> Bool { (a & RegisterA.divider) >> 4 <= 2 }
    private var dividerRunning: Bool { Self.dividerRuns(registerA) }
    private var clockRunning: Bool { dividerRunning && registerB & RegisterB.set == 0 }

    /// The periodic interrupt's period in divider ticks, nil for rate 0.
    private var periodTicks: Int64? {
        let rate = Int64(registerA & RegisterA.rate)
        switch rate {
        case 0: return nil
        case 1, 2: return 1 << (rate + 6)
        default: return 1 << (rate - 1)
        }
    }

    private var alarm: AlarmSchedule {
        AlarmSchedule(
            hours: cmos[RTCRegister.hoursAlarm], minutes: cmos[RTCRegister.minutesAlarm],
            seconds: cmos[RTCRegister.secondsAlarm], format: format)
    }

    private func secondIndex(at t: Int64) -> Int64 { floorDivide(t - origin, Self.second) }
    private func time(at t: Int64) -> Int64 { timeAtOrigin + secondIndex(at: t) }

    /// 32.768 kHz divider ticks since `origin`, computed per second so nothing overflows.
    private func dividerTicks(at t: Int64) -> Int64 {
        let seconds = secondIndex(at: t)
        let rest = t - origin - seconds * Self.second
        return seconds * Self.dividerHertz + rest * Self.dividerHertz / Self.second
    }

    /// The first host time at which `dividerTicks` reaches `tick`.
    private func hostTime(atDividerTick tick: Int64) -> Int64 {
        let seconds = floorDivide(tick, Self.dividerHertz)
        let rest = tick - seconds * Self.dividerHertz
        return origin + seconds * Self.second + (rest * Self.second + Self.dividerHertz - 1) / Self.dividerHertz
    }

    private func clockRegisters(at t: Int64) -> ClockRegisters {
        ClockRegisters(time: time(at: t), weekdayOffset: weekdayOffset, format: format)
    }

    private var storedClockRegisters: ClockRegisters {
        var registers = ClockRegisters()
        for i in Self.clockIndices { registers[i] = cmos[i] }
        return registers
    }

    private static let clockIndices = [
        RTCRegister.seconds, RTCRegister.minutes, RTCRegister.hours, RTCRegister.weekday,
        RTCRegister.dayOfMonth, RTCRegister.month, RTCRegister.year, RTCRegister.century,
    ]

    private func updateInProgress(at t: Int64) -> Bool {
        clockRunning && floorModulo(t - origin, Self.second) >= Self.second - Self.updateWarning
    }

    // MARK: flags and IRQ 8

    /// C's flags as of `t`: those already set plus every event since `lastSync`.
    private func flags(at t: Int64) -> UInt8 {
        var flags = cmos[RTCRegister.c] & RegisterC.flags
        guard t > lastSync else { return flags }
        if dividerRunning, let period = periodTicks,
           floorDivide(dividerTicks(at: t), period) > floorDivide(dividerTicks(at: lastSync), period) {
            flags |= RegisterC.periodic
        }
        if clockRunning {
            let before = secondIndex(at: lastSync), after = secondIndex(at: t)
            if after > before {
                flags |= RegisterC.updateEnded
                // The alarm is compared with the new time at every update in the interval.
                if let match = alarm.next(after: timeAtOrigin + before), match <= timeAtOrigin + after {
                    flags |= RegisterC.alarm
                }
            }
        }
        return flags
    }

    private static func withRequest(_ flags: UInt8, enables b: UInt8) -> UInt8 {
        flags & b & RegisterB.interruptEnables != 0 ? flags | RegisterC.interruptRequest : flags
    }

    private func sync(at t: Int64) {
        cmos[RTCRegister.c] = flags(at: t)
        lastSync = t
        // Move the origin up to the current second so the arithmetic stays small.
        if dividerRunning {
            let seconds = secondIndex(at: t)
            origin += seconds * Self.second
            timeAtOrigin = floorModulo(timeAtOrigin + seconds, CivilTime.cycleSeconds)
        }
        refreshInterruptRequest()
    }

    /// IRQF is PF·PIE + AF·AIE + UF·UIE; IRQ 8 is asserted exactly while it is set.
    private func refreshInterruptRequest() {
        cmos[RTCRegister.c] = Self.withRequest(cmos[RTCRegister.c] & RegisterC.flags, enables: registerB)
        let level = cmos[RTCRegister.c] & RegisterC.interruptRequest != 0
        guard level != irqAsserted else { return }
        irqAsserted = level
        host.setIRQ(line: irqLine, level: level)
    }

    /// Arms the timer for the first enabled event that could raise IRQF, while the line is low.
    private func reschedule() {
        guard running else { return }
        var deadline: Int64?
        func consider(_ t: Int64) { deadline = min(deadline ?? t, t) }
        let now = currentTime, b = registerB
        if !irqAsserted {
            if b & RegisterB.periodicEnable != 0, dividerRunning, let period = periodTicks {
                consider(hostTime(atDividerTick: (floorDivide(dividerTicks(at: now), period) + 1) * period))
            }
            if clockRunning {
                let seconds = secondIndex(at: now)
                if b & RegisterB.updateEndedEnable != 0 { consider(origin + (seconds + 1) * Self.second) }
                let current = timeAtOrigin + seconds
                if b & RegisterB.alarmEnable != 0, let match = alarm.next(after: current) {
                    consider(origin + (seconds + match - current) * Self.second)
                }
            }
        }
        guard deadline != armedDeadline else { return }
        armedDeadline = deadline
        if let deadline {
            host.armTimer(token: Self.updateTimer, deadline: UInt64(max(deadline, 0)))
        } else {
            host.cancelTimer(token: Self.updateTimer)
        }
    }

    func timerFired(token: UInt64) {
        guard token == Self.updateTimer else { return }
        armedDeadline = nil
        sync(at: currentTime)
        reschedule()
    }

    // MARK: lifecycle

    /// The RESET pin: clears PIE, AIE, UIE, SQWE and the flags; the clock, the time base and the
    /// RAM run on battery and keep their contents (the power-on values are set at create).
    func reset() {
        sync(at: currentTime)
        cmos[RTCRegister.b] &= ~(RegisterB.interruptEnables | RegisterB.squareWaveEnable)
        cmos[RTCRegister.c] = 0
        index = 0
        nmiDisabled = false
        refreshInterruptRequest()
        reschedule()
    }

    func start() {
        running = true
        reschedule()
    }

    func stop() {
        running = false
        host.cancelTimer(token: Self.updateTimer)
        armedDeadline = nil
        flushNVRAM()
    }

    // MARK: guest accesses (the VM-exit path: no allocation; NVRAM files are written as posted work)

    func io(_ access: IOAccess, data: inout UInt64) {
        guard access.region == 0, access.offset < 2 else { return }
        let base = Int(access.offset)
        // A wide access is split into byte cycles: `outw 0x70` sets the index, then writes the data.
        if access.isWrite {
            for lane in 0..<min(access.size, 2 - base) {
                let byte = UInt8(truncatingIfNeeded: data >> UInt64(8 * lane))
                if base + lane == 0 {
                    index = byte & 0x7F
                    nmiDisabled = byte & 0x80 != 0
                } else {
                    writeRegister(Int(index), byte)
                }
            }
        } else {
            var value: UInt64 = 0
            for lane in 0..<min(access.size, 8) {
                // The index port is write-only on a PC; it and bytes past the region float high.
                let byte: UInt8 = base + lane == 1 ? readRegister(Int(index)) : 0xFF
                value |= UInt64(byte) << UInt64(8 * lane)
            }
            data = value
        }
    }

    private func readRegister(_ i: Int) -> UInt8 {
        let now = currentTime
        switch i {
        case RTCRegister.a:
            return registerA | (updateInProgress(at: now) ? RegisterA.updateInProgress : 0)
        case RTCRegister.c:
            sync(at: now)
            let value = cmos[RTCRegister.c]
            cmos[RTCRegister.c] = 0
            refreshInterruptRequest()
            reschedule()
            return value
        case RTCRegister.d:
            return RegisterD.value
        default:
            if RTCRegister.isClock(i), clockRunning { return clockRegisters(at: now)[i] }
            return cmos[i]
        }
    }

    private func writeRegister(_ i: Int, _ value: UInt8) {
        let now = currentTime
        switch i {
        case RTCRegister.a:
            sync(at: now)
            writeA(value & RegisterA.writable, at: now)
        case RTCRegister.b:
            sync(at: now)
            writeB(value, at: now)
        case RTCRegister.c, RTCRegister.d:
            break // read-only
        case RTCRegister.secondsAlarm, RTCRegister.minutesAlarm, RTCRegister.hoursAlarm:
            sync(at: now)
            cmos[i] = value
            reschedule()
        default:
            if RTCRegister.isClock(i) {
                guard clockRunning else {
                    cmos[i] = value
                    return
                }
                // The next update counts on from the written value, the divider phase unchanged.
                sync(at: now)
                var registers = clockRegisters(at: now)
                registers[i] = value
                setTime(from: registers, at: now)
                reschedule()
            } else if cmos[i] != value {
                cmos[i] = value
                noteNVRAMChange()
            }
        }
    }

    private func writeA(_ value: UInt8, at now: Int64) {
        let wasClock = clockRunning, wasDivider = dividerRunning
        let shown = clockRegisters(at: now)
        cmos[RTCRegister.a] = value
        // Leaving divider reset: the first update comes half a second later.
        if !wasDivider, dividerRunning { origin = now - Self.second / 2 }
        if wasClock, !clockRunning { store(shown) }
        if !wasClock, clockRunning { setTime(from: storedClockRegisters, at: now) }
        reschedule()
    }

    private func writeB(_ written: UInt8, at now: Int64) {
        // SET inhibits updates and clears UIE.
        let value = written & RegisterB.set != 0 ? written & ~RegisterB.updateEndedEnable : written
        let wasClock = clockRunning
        // Halting keeps the registers as they read now, in the format they were read in.
        if wasClock, value & RegisterB.set != 0 { store(clockRegisters(at: now)) }
        cmos[RTCRegister.b] = value
        if !wasClock, clockRunning { setTime(from: storedClockRegisters, at: now) }
        refreshInterruptRequest()
        reschedule()
    }

    private func store(_ registers: ClockRegisters) {
        for i in Self.clockIndices { cmos[i] = registers[i] }
    }

    private func setTime(from registers: ClockRegisters, at now: Int64) {
        let shown = registers.time(format: format)
        timeAtOrigin = shown.seconds - secondIndex(at: now)
        weekdayOffset = shown.weekdayOffset
    }

    // MARK: NVRAM file

    private func noteNVRAMChange() {
        guard nvramFile != nil else { return }
        nvramDirty = true
        guard !flushPosted else { return }
        flushPosted = true
        host.postWork(token: Self.flushWork)
    }

    func workPosted(token: UInt64) {
        guard token == Self.flushWork else { return }
        flushPosted = false
        flushNVRAM()
    }

    private func flushNVRAM() {
        guard let nvramFile, nvramDirty else { return }
        var image = [UInt8](repeating: 0, count: NVRAMFile.size)
        for i in 0..<RTCRegister.count where RTCRegister.isNVRAM(i) { image[i] = cmos[i] }
        do {
            try nvramFile.write(image)
            nvramDirty = false
            nvramFailing = false
        } catch {
            // Kept dirty: the next change or stop tries again. Logged once per failing streak.
            if !nvramFailing { host.log(.error, "\(error)") }
            nvramFailing = true
        }
    }

    // MARK: state

    static let stateVersion: UInt32 = 1

    /// Version 1: the 128 registers (clock registers as they read at the save, A without UIP,
    /// C with the flags due by then), the index (u8), the NMI mask (bool), the divider phase
    /// within its second in ns (u64, 0 while it is stopped), the running clock's time in seconds
    /// since 0000-01-01 (i64) and weekday offset (u8), both 0 while it is halted. Nothing refers
    /// to the host clock, so the state loads on any host.
    func save(to state: inout StateWriter) {
        let now = currentTime
        var image = cmos
        image[RTCRegister.c] = Self.withRequest(flags(at: now), enables: registerB)
        if clockRunning {
            let shown = clockRegisters(at: now)
            for i in Self.clockIndices { image[i] = shown[i] }
        }
        for i in 0..<RTCRegister.count { state.write(image[i]) }
        state.write(index)
        state.write(nmiDisabled)
        state.write(dividerRunning ? UInt64(floorModulo(now - origin, Self.second)) : 0)
        state.write(clockRunning ? floorModulo(time(at: now), CivilTime.cycleSeconds) : 0)
        state.write(clockRunning ? UInt8(weekdayOffset) : 0)
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == Self.stateVersion else {
            throw StateError("cmos-rtc state version \(version) is unknown (this plugin writes \(Self.stateVersion))")
        }
        var image = InlineArray<128, UInt8>(repeating: 0)
        for i in 0..<RTCRegister.count { image[i] = try state.read() }
        let index: UInt8 = try state.read()
        let nmiDisabled = try state.readBool()
        let phase: UInt64 = try state.read()
        let seconds: Int64 = try state.read()
        let weekday: UInt8 = try state.read()
        try state.finish()

        let a = image[RTCRegister.a], b = image[RTCRegister.b], c = image[RTCRegister.c]
        guard index <= 0x7F else { throw StateError("index \(hex(index)) has bit 7 set") }
        guard a & ~RegisterA.writable == 0 else { throw StateError("register A \(hex(a)) has UIP set") }
        guard b & RegisterB.set == 0 || b & RegisterB.updateEndedEnable == 0 else {
            throw StateError("register B \(hex(b)) has UIE with SET")
        }
        guard c == Self.withRequest(c & RegisterC.flags, enables: b) else {
            throw StateError("register C \(hex(c)) does not follow from its flags and register B \(hex(b))")
        }
        guard image[RTCRegister.d] == RegisterD.value else { throw StateError("register D \(hex(image[RTCRegister.d])) is not 0x80") }
        let dividerRuns = Self.dividerRuns(a)
        guard dividerRuns ? phase < UInt64(Self.second) : phase == 0 else {
            throw StateError("divider phase \(phase) ns is invalid with register A \(hex(a))")
        }
        if dividerRuns, b & RegisterB.set == 0 {
            guard (0..<CivilTime.cycleSeconds).contains(seconds), weekday < 7 else {
                throw StateError("time \(seconds) s, weekday offset \(weekday) out of range")
            }
            let shown = ClockRegisters(time: seconds, weekdayOffset: Int64(weekday), format: RegisterFormat(registerB: b))
            for i in Self.clockIndices where image[i] != shown[i] {
                throw StateError("clock register \(hex(i)) is \(hex(image[i])), but the time says \(hex(shown[i]))")
            }
        } else {
            guard seconds == 0, weekday == 0 else { throw StateError("a halted clock carries a running time") }
        }

        let now = currentTime
        let nvramChanged = (0..<RTCRegister.count).contains { RTCRegister.isNVRAM($0) && cmos[$0] != image[$0] }
        cmos = image
        self.index = index
        self.nmiDisabled = nmiDisabled
        origin = now - Int64(phase)
        timeAtOrigin = seconds
        weekdayOffset = Int64(weekday)
        lastSync = now
        refreshInterruptRequest()
        reschedule()
        if nvramChanged { noteNVRAMChange() }
    }
}

func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
