import VeneerPluginKit

/// An Intel 8254 programmable interval timer as wired in a PC: counter 0 drives IRQ 0, counter 1
/// (once DRAM refresh) is free, counter 2 feeds the speaker and is gated and read back through
/// system control port B (0x61).
///
/// Counting is lazy: the counters are functions of the host clock (`PITCounter`), so the VM-exit
/// path does arithmetic only. Counter 0's rising OUT edges become IRQ 0 edges through one host
/// timer armed at the next edge; a late timer delivers a single edge and re-aligns, so a stalled
/// host never floods the guest. As KVM's in-kernel PIT does, periodic interrupts are spaced at
/// least `minimumPeriodicInterval` apart: a guest programming a tiny period would otherwise keep
/// the event thread busy at hundreds of kHz. Counts and OUT read back exactly either way.
final class PIT8254: VeneerDevice {
    static let irqTimer: UInt64 = 1
    static let minimumPeriodicInterval: UInt64 = 200_000
    /// Port B bit 4 toggles with each DRAM refresh request: every 18 PIT ticks (15.09 µs) on a PC.
    static let refreshTicks: UInt64 = 18

    enum PortB {
        static let gate2: UInt8 = 0x01
        static let speakerData: UInt8 = 0x02
        /// Bits 0-3 are read/write (gate, speaker, parity and channel-check enables).
        static let writable: UInt8 = 0x0F
        static let refreshToggle: UInt8 = 0x10
        static let out2: UInt8 = 0x20
    }

    let host: HostServices
    let irqLine: UInt32

    // Guest-visible state (saved).
    private var counters = InlineArray<3, PITCounter>(repeating: PITCounter(gate: true))
    private var portB: UInt8 = 0

    // Interrupt delivery (saved only as "an edge is owed"; the rest describes this host's clock).
    private var running = false
    /// Edges at or before this tick have been delivered (or dropped across a stop).
    private var lastIRQTick: UInt64 = 0
    /// An edge came due but was not delivered yet (restored from saved state).
    private var irqOwed = false
    private var lastPulseTime: UInt64 = 0
    private var armedDeadline: UInt64?

    init(host: HostServices, port: UInt16, speakerPort: UInt16?, irq: UInt32) throws(PluginError) {
        self.host = host
        irqLine = irq
        try host.registerPortIO(region: 0, port: port, length: 4)
        if let speakerPort { try host.registerPortIO(region: 1, port: speakerPort, length: 1) }
        counters[2].gate = false
    }

    private var currentTick: UInt64 { PITClock.tick(atNanoseconds: host.now) }

    // MARK: lifecycle

    /// Power-on: every counter unprogrammed (mode 0, LSB-then-MSB, no count, OUT low) and port B
    /// clear, so counter 2's gate is low. Firmware or the kernel programs the counters it uses.
    func reset() {
        counters = InlineArray(repeating: PITCounter(gate: true))
        counters[2].gate = false
        portB = 0
        irqOwed = false
        lastIRQTick = currentTick
        rescheduleIRQ()
    }

    func start() {
        running = true
        // Edges that passed while stopped are dropped, not replayed.
        lastIRQTick = currentTick
        rescheduleIRQ()
    }

    func stop() {
        running = false
        host.cancelTimer(token: Self.irqTimer)
        armedDeadline = nil
    }

    // MARK: guest accesses (the VM-exit path: no allocation)

    func io(_ access: IOAccess, data: inout UInt64) {
        let t = currentTick
        let ports: Int
        switch access.region {
        case 0: ports = 4
        case 1: ports = 1
        default: return
        }
        guard access.offset < UInt64(ports) else { return }
        let base = Int(access.offset)
        // Counter 0's edges up to now go out before anything can change its timeline.
        if access.region == 0 { catchUpIRQ(at: t) }
        // A wide access is split into byte cycles on consecutive ports; bytes past the region float.
        if access.isWrite {
            for lane in 0..<min(access.size, ports - base) {
                let byte = UInt8(truncatingIfNeeded: data >> UInt64(8 * lane))
                if access.region == 0 { writePIT(base + lane, byte, at: t) } else { writePortB(byte, at: t) }
            }
            if access.region == 0 { rescheduleIRQ() }
        } else {
            var value: UInt64 = 0
            for lane in 0..<min(access.size, 8) {
                let port = base + lane
                let byte: UInt8 = port >= ports ? 0xFF : access.region == 0 ? readPIT(port, at: t) : readPortB(at: t)
                value |= UInt64(byte) << UInt64(8 * lane)
            }
            data = value
        }
    }

    private func readPIT(_ port: Int, at t: UInt64) -> UInt8 {
        switch port {
        case 0...2: return counters[port].readByte(at: t)
        default: return 0xFF // the control word register is write-only
        }
    }

    private func writePIT(_ port: Int, _ value: UInt8, at t: UInt64) {
        switch port {
        case 0...2:
            counters[port].writeByte(value, at: t)
        default:
            let select = Int(value >> 6)
            let rw = value >> 4 & 3
            if select == 3 {
                readBack(value, at: t)
            } else if rw == 0 {
                counters[select].latchCount(at: t)
            } else {
                counters[select].writeControl(modeBits: value >> 1 & 7, access: rw, bcd: value & 1 != 0, at: t)
            }
        }
    }

    /// Read-back command: bits 1-3 pick counters, bit 5 clear latches counts, bit 4 clear latches status.
    private func readBack(_ command: UInt8, at t: UInt64) {
        for i in 0..<3 where command & (2 << i) != 0 {
            if command & 0x20 == 0 { counters[i].latchCount(at: t) }
            if command & 0x10 == 0 { counters[i].latchStatus(at: t) }
        }
    }

    private func readPortB(at t: UInt64) -> UInt8 {
        var value = portB & PortB.writable
        if (t / Self.refreshTicks) & 1 != 0 { value |= PortB.refreshToggle }
        if counters[2].output(at: t) { value |= PortB.out2 }
        return value
    }

    private func writePortB(_ value: UInt8, at t: UInt64) {
        portB = value & PortB.writable
        counters[2].setGate(value & PortB.gate2 != 0, at: t)
    }

    // MARK: IRQ 0

    /// Delivers one edge if counter 0's OUT rose since the last check, however many times it did.
    private func catchUpIRQ(at t: UInt64) {
        guard running else { return }
        var due = irqOwed
        if !due, let edge = counters[0].nextRisingEdge(after: lastIRQTick) {
            due = PITClock.distance(from: edge, to: t) >= 0
        }
        lastIRQTick = t
        guard due else { return }
        irqOwed = false
        // An ISA edge for the in-kernel PIC: the line rises and falls.
        host.setIRQ(line: irqLine, level: true)
        host.setIRQ(line: irqLine, level: false)
        lastPulseTime = host.now
    }

    private func rescheduleIRQ() {
        guard running else { return }
        var deadline: UInt64?
        if irqOwed {
            deadline = host.now
        } else if let edge = counters[0].nextRisingEdge(after: lastIRQTick) {
            deadline = PITClock.nanoseconds(atTick: edge)
        }
        if let d = deadline, counters[0].isPeriodic {
            let (earliest, overflow) = lastPulseTime.addingReportingOverflow(Self.minimumPeriodicInterval)
            deadline = max(d, overflow ? .max : earliest)
        }
        guard deadline != armedDeadline else { return }
        armedDeadline = deadline
        if let deadline {
            host.armTimer(token: Self.irqTimer, deadline: deadline)
        } else {
            host.cancelTimer(token: Self.irqTimer)
        }
    }

    func timerFired(token: UInt64) {
        guard token == Self.irqTimer else { return }
        armedDeadline = nil
        catchUpIRQ(at: currentTick)
        rescheduleIRQ()
    }

    // MARK: state

    static let stateVersion: UInt32 = 1

    /// Version 1: port B bits 0-3 (u8), "an IRQ 0 edge is owed" (bool), then counters 0-2 (see
    /// `PITCounter.save`). Every tick is stored relative to the tick of the save, so the state
    /// means the same on a host whose clock reads differently.
    func save(to state: inout StateWriter) {
        let t = currentTick
        var owed = irqOwed
        if running, !owed, let edge = counters[0].nextRisingEdge(after: lastIRQTick) {
            owed = PITClock.distance(from: edge, to: t) >= 0
        }
        state.write(portB)
        state.write(owed)
        for i in 0..<3 { counters[i].normalized(at: t).save(to: &state, at: t) }
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == Self.stateVersion else {
            throw StateError("pit8254 state version \(version) is unknown (this plugin writes \(Self.stateVersion))")
        }
        let t = currentTick
        let portB: UInt8 = try state.read()
        guard portB & ~PortB.writable == 0 else { throw StateError("port B value \(hex(portB)) has read-only bits set") }
        let owed = try state.readBool()
        var loaded = InlineArray<3, PITCounter>(repeating: PITCounter(gate: true))
        for i in 0..<3 {
            let gate = i != 2 || portB & PortB.gate2 != 0
            do throws(StateError) {
                loaded[i] = try PITCounter.load(from: &state, gate: gate, at: t)
            } catch {
                throw StateError("counter \(i): \(error)")
            }
        }
        try state.finish()

        counters = loaded
        self.portB = portB
        irqOwed = owed
        lastIRQTick = t
        rescheduleIRQ()
    }
}

func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
