import VeneerPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// A National/TI PC16550D UART as wired on a PC: eight byte-wide ports, one ISA interrupt line
/// gated by MCR OUT2, 16-byte receive FIFO, characters to and from host fds.
///
/// Transmission is instantaneous: a THR write leaves THR and the transmitter shift register empty
/// again before the access returns, so the transmit FIFO never holds a byte (LSR THRE and TEMT
/// always read 1). Reception from the host is flow-controlled instead of timed: the input fd is
/// read only while the receive FIFO has room, so host input is never overrun or dropped; overruns
/// only happen in loopback, where the guest itself outruns its reads.
///
/// The host side is a byte stream, not a wire: LCR's word length, parity and stop bits do not
/// reshape bytes (a guest that never programs LCR, power-on 5-bit words, still prints whole
/// bytes, as test kernels expect). The divisor matters only to the character timeout.
final class Serial16550: VeneerDevice {
    // Register offsets and bits, named as in the datasheet.
    enum IER {
        static let receivedData: UInt8 = 0x01
        static let thrEmpty: UInt8 = 0x02
        static let lineStatus: UInt8 = 0x04
        static let modemStatus: UInt8 = 0x08
        static let writable: UInt8 = 0x0F
    }

    enum IIR {
        static let none: UInt8 = 0x01
        static let lineStatus: UInt8 = 0x06
        static let receivedData: UInt8 = 0x04
        static let characterTimeout: UInt8 = 0x0C
        static let thrEmpty: UInt8 = 0x02
        static let modemStatus: UInt8 = 0x00
        static let fifosEnabled: UInt8 = 0xC0
    }

    enum FCR {
        static let enable: UInt8 = 0x01
        static let clearReceive: UInt8 = 0x02
        static let clearTransmit: UInt8 = 0x04
        /// What the device keeps: enable, DMA mode select and the receive trigger bits.
        static let kept: UInt8 = 0xC9
    }

    enum LCR {
        static let dlab: UInt8 = 0x80
    }

    enum MCR {
        static let dtr: UInt8 = 0x01
        static let rts: UInt8 = 0x02
        static let out1: UInt8 = 0x04
        static let out2: UInt8 = 0x08
        static let loopback: UInt8 = 0x10
        static let writable: UInt8 = 0x1F
    }

    enum LSR {
        static let dataReady: UInt8 = 0x01
        static let overrun: UInt8 = 0x02
        static let thrEmpty: UInt8 = 0x20
        static let transmitterEmpty: UInt8 = 0x40
    }

    enum MSR {
        static let deltaCTS: UInt8 = 0x01
        static let deltaDSR: UInt8 = 0x02
        static let trailingEdgeRI: UInt8 = 0x04
        static let deltaDCD: UInt8 = 0x08
        static let deltas: UInt8 = 0x0F
        static let cts: UInt8 = 0x10
        static let dsr: UInt8 = 0x20
        static let ri: UInt8 = 0x40
        static let dcd: UInt8 = 0x80
        /// Outside loopback the far end looks like a connected, ready terminal, so guests that wait
        /// for carrier or clear-to-send do not hang; RI stays off.
        static let externalInputs: UInt8 = cts | dsr | dcd
    }

    static let timeoutTimer: UInt64 = 1
    static let inputToken: UInt64 = 1
    static let resumeInputWork: UInt64 = 1
    /// The 1.8432 MHz crystal divided by 16: the baud rate at divisor 1.
    static let baseBaud: UInt64 = 115_200
    static let powerOnDivisor: UInt16 = 12

    let host: HostServices
    let irqLine: UInt32
    let output: Endpoint?
    let input: Endpoint?

    // Guest-visible state (saved).
    private var ier: UInt8 = 0
    private var lcr: UInt8 = 0
    private var mcr: UInt8 = 0
    private var scr: UInt8 = 0
    private var fcr: UInt8 = 0
    private var divisor: UInt16 = powerOnDivisor
    /// LSR error bits latched until LSR is read; only OE arises here (no parity, framing or
    /// break on a byte stream), so LSR bit 7 (error in FIFO) stays 0 too.
    private var lineErrors: UInt8 = 0
    private var modemDeltas: UInt8 = 0
    /// The THRE interrupt latch: set when THR empties (or ETBEI is enabled with THR empty),
    /// cleared by a THR write or by an IIR read that reports it.
    private var thrInterrupt = false
    private var timeoutInterrupt = false
    private var rx = ReceiveFIFO()

    // Host-side bookkeeping (not saved: it describes this process's fds, clock and IRQ line).
    private var irqAsserted = false
    private var running = false
    private var watching = false
    private var inputEnded = false
    private var resumePosted = false
    private var timerArmed = false
    /// Clock time of the last character moved into or out of the receive FIFO.
    private var lastReceiveActivity: UInt64 = 0
    private var outputFailed = false

    /// On failure the caller still owns `output` and `input`: the ports are claimed before the
    /// endpoints are stored, so a failed init never runs deinit (which would close them too).
    init(host: HostServices, port: UInt16, irq: UInt32, output: Endpoint?, input: Endpoint?) throws(PluginError) {
        try host.registerPortIO(region: 0, port: port, length: 8)
        self.host = host
        self.irqLine = irq
        self.output = output
        self.input = input
    }

    deinit {
        if watching, let input { host.unwatch(fd: input.fd) }
        output?.close()
        input?.close()
    }

    // MARK: derived state

    private var fifosEnabled: Bool { fcr & FCR.enable != 0 }
    private var loopback: Bool { mcr & MCR.loopback != 0 }
    private var dlab: Bool { lcr & LCR.dlab != 0 }
    private var receiveCapacity: Int { fifosEnabled ? ReceiveFIFO.depth : 1 }

    private var triggerLevel: Int {
        switch fcr >> 6 {
        case 0: 1
        case 1: 4
        case 2: 8
        default: 14
        }
    }

    /// MSR bits 4-7: in loopback the modem outputs feed the inputs (DTR→DSR, RTS→CTS, OUT1→RI,
    /// OUT2→DCD); otherwise the far end's constant lines.
    private var modemInputs: UInt8 {
        guard loopback else { return MSR.externalInputs }
        var inputs: UInt8 = 0
        if mcr & MCR.rts != 0 { inputs |= MSR.cts }
        if mcr & MCR.dtr != 0 { inputs |= MSR.dsr }
        if mcr & MCR.out1 != 0 { inputs |= MSR.ri }
        if mcr & MCR.out2 != 0 { inputs |= MSR.dcd }
        return inputs
    }

    /// IIR bits 0-3: the highest-priority pending interrupt, as the datasheet orders them.
    private var interruptID: UInt8 {
        if ier & IER.lineStatus != 0, lineErrors != 0 { return IIR.lineStatus }
        if ier & IER.receivedData != 0 {
            if rx.count >= (fifosEnabled ? triggerLevel : 1) { return IIR.receivedData }
            if timeoutInterrupt { return IIR.characterTimeout }
        }
        if ier & IER.thrEmpty != 0, thrInterrupt { return IIR.thrEmpty }
        if ier & IER.modemStatus != 0, modemDeltas != 0 { return IIR.modemStatus }
        return IIR.none
    }

    /// Four character times of 10 bits at the programmed rate (divisor 0 is taken as 1).
    private var characterTimeout: UInt64 {
        4 * 10 * UInt64(max(divisor, 1)) * 1_000_000_000 / Self.baseBaud
    }

    /// The PC wiring: INTR reaches the IRQ line through a buffer enabled by the OUT2 pin, which
    /// loopback forces inactive, so loopback interrupts show in IIR but never reach the line.
    private func updateIRQ() {
        let level = interruptID != IIR.none && mcr & MCR.out2 != 0 && !loopback
        guard level != irqAsserted else { return }
        irqAsserted = level
        host.setIRQ(line: irqLine, level: level)
    }

    // MARK: lifecycle

    func reset() {
        ier = 0
        lcr = 0
        mcr = 0
        scr = 0
        fcr = 0
        divisor = Self.powerOnDivisor
        lineErrors = 0
        modemDeltas = 0
        thrInterrupt = false
        timeoutInterrupt = false
        rx.removeAll()
        cancelTimeoutTimer()
        syncInputWatch()
        updateIRQ()
    }

    func start() {
        running = true
        lastReceiveActivity = host.now
        syncInputWatch()
        armTimeoutTimerIfNeeded()
    }

    func stop() {
        running = false
        syncInputWatch()
        cancelTimeoutTimer()
    }

    // MARK: guest accesses (the VM-exit path: no allocation)

    func io(_ access: IOAccess, data: inout UInt64) {
        guard access.region == 0, access.offset < 8 else { return }
        let base = Int(access.offset)
        // The ISA bus splits a wider access to this byte-wide device into byte cycles on
        // consecutive ports; bytes past the last register float high.
        if access.isWrite {
            for lane in 0..<min(access.size, 8 - base) {
                writeRegister(base + lane, UInt8(truncatingIfNeeded: data >> UInt64(8 * lane)))
            }
        } else {
            var value: UInt64 = 0
            for lane in 0..<min(access.size, 8) {
                let byte = base + lane < 8 ? readRegister(base + lane) : 0xFF
                value |= UInt64(byte) << UInt64(8 * lane)
            }
            data = value
        }
    }

    private func readRegister(_ offset: Int) -> UInt8 {
        switch offset {
        case 0: return dlab ? UInt8(truncatingIfNeeded: divisor) : readRBR()
        case 1: return dlab ? UInt8(truncatingIfNeeded: divisor >> 8) : ier
        case 2: return readIIR()
        case 3: return lcr
        case 4: return mcr
        case 5: return readLSR()
        case 6: return readMSR()
        default: return scr
        }
    }

    private func writeRegister(_ offset: Int, _ value: UInt8) {
        switch offset {
        case 0:
            if dlab { divisor = divisor & 0xFF00 | UInt16(value) } else { transmit(value) }
        case 1:
            if dlab { divisor = divisor & 0x00FF | UInt16(value) << 8 } else { writeIER(value) }
        case 2: writeFCR(value)
        case 3: lcr = value
        case 4: writeMCR(value)
        case 5, 6: break // LSR and MSR writes are the datasheet's factory test mode: ignored.
        default: scr = value
        }
    }

    /// An empty FIFO reads 0 (the stale RBR of real parts is not modelled).
    private func readRBR() -> UInt8 {
        guard let byte = rx.pop() else { return 0 }
        // A read clears a timeout indication and restarts the timeout count.
        timeoutInterrupt = false
        noteReceiveActivity()
        requestInputResume()
        updateIRQ()
        return byte
    }

    private func readIIR() -> UInt8 {
        let id = interruptID
        if id == IIR.thrEmpty {
            thrInterrupt = false
            updateIRQ()
        }
        return id | (fifosEnabled ? IIR.fifosEnabled : 0)
    }

    private func readLSR() -> UInt8 {
        var value = LSR.thrEmpty | LSR.transmitterEmpty | lineErrors
        if !rx.isEmpty { value |= LSR.dataReady }
        if lineErrors != 0 {
            lineErrors = 0
            updateIRQ()
        }
        return value
    }

    private func readMSR() -> UInt8 {
        let value = modemInputs | modemDeltas
        if modemDeltas != 0 {
            modemDeltas = 0
            updateIRQ()
        }
        return value
    }

    private func writeIER(_ value: UInt8) {
        let enabled = value & IER.writable
        // Enabling ETBEI while THR is empty (always, here) raises THRE at once; Linux's 8250
        // driver probes for exactly this (UART_BUG_THRE).
        if enabled & IER.thrEmpty != 0, ier & IER.thrEmpty == 0 { thrInterrupt = true }
        ier = enabled
        updateIRQ()
    }

    private func writeFCR(_ value: UInt8) {
        let enable = value & FCR.enable != 0
        if enable != fifosEnabled {
            // Switching between FIFO and 16450 mode empties both FIFOs.
            rx.removeAll()
            timeoutInterrupt = false
        }
        if enable {
            fcr = value & FCR.kept
            if value & FCR.clearReceive != 0 {
                rx.removeAll()
                timeoutInterrupt = false
            }
            // FCR.clearTransmit has nothing to clear: the transmit FIFO is always empty.
        } else {
            // With FCR0 clear the other bits are not programmed.
            fcr &= ~FCR.enable
        }
        requestInputResume()
        updateIRQ()
    }

    private func writeMCR(_ value: UInt8) {
        let before = modemInputs
        let wasLoopback = loopback
        mcr = value & MCR.writable
        let after = modemInputs
        let changed = before ^ after
        if changed & MSR.cts != 0 { modemDeltas |= MSR.deltaCTS }
        if changed & MSR.dsr != 0 { modemDeltas |= MSR.deltaDSR }
        if before & MSR.ri != 0, after & MSR.ri == 0 { modemDeltas |= MSR.trailingEdgeRI }
        if changed & MSR.dcd != 0 { modemDeltas |= MSR.deltaDCD }
        // Leaving loopback reconnects the receiver to the host input.
        if wasLoopback, !loopback { requestInputResume() }
        updateIRQ()
    }

    private func transmit(_ character: UInt8) {
        // The write clears THRE's interrupt; the byte leaves at once and THR empties again, so
        // an enabled THRE interrupt pulses the line (a fresh edge for the PIC), as on hardware.
        thrInterrupt = false
        updateIRQ()
        if loopback {
            receive(character)
        } else {
            send(character)
        }
        thrInterrupt = true
        updateIRQ()
    }

    /// A character arriving from the transmitter in loopback.
    private func receive(_ character: UInt8) {
        if rx.count < receiveCapacity {
            rx.push(character)
        } else {
            lineErrors |= LSR.overrun
            // FIFO mode: the character in the shift register is lost. 16450 mode: it overwrites RBR.
            if !fifosEnabled { rx.replaceNewest(with: character) }
        }
        noteReceiveActivity()
    }

    /// One write(2) per byte, unbuffered, so nothing is lost if the VM dies.
    private func send(_ character: UInt8) {
        guard let output, !outputFailed else { return }
        var byte = character
        while true {
            if write(output.fd, &byte, 1) == 1 { return }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK {
                // A non-blocking stream that is full: wait like a slow line would, then retry.
                var waiter = pollfd(fd: output.fd, events: Int16(POLLOUT), revents: 0)
                if poll(&waiter, 1, 1000) > 0 { continue }
            }
            outputFailed = true
            host.log(.error, "serial output stopped: write failed: \(errnoText(code))")
            return
        }
    }

    // MARK: character timeout

    private var timeoutTimerNeeded: Bool { running && fifosEnabled && !rx.isEmpty && !timeoutInterrupt }

    /// One timer stays armed while needed; each activity just moves the point it counts from,
    /// so the exit path reads the clock instead of re-arming a timer per byte.
    private func noteReceiveActivity() {
        lastReceiveActivity = host.now
        armTimeoutTimerIfNeeded()
    }

    private func armTimeoutTimerIfNeeded() {
        guard timeoutTimerNeeded, !timerArmed else { return }
        timerArmed = true
        host.armTimer(token: Self.timeoutTimer, deadline: lastReceiveActivity + characterTimeout)
    }

    private func cancelTimeoutTimer() {
        guard timerArmed else { return }
        timerArmed = false
        host.cancelTimer(token: Self.timeoutTimer)
    }

    func timerFired(token: UInt64) {
        guard token == Self.timeoutTimer else { return }
        timerArmed = false
        guard timeoutTimerNeeded else { return }
        let due = lastReceiveActivity + characterTimeout
        guard host.now >= due else {
            timerArmed = true
            host.armTimer(token: Self.timeoutTimer, deadline: due)
            return
        }
        timeoutInterrupt = true
        updateIRQ()
    }

    // MARK: host input

    /// Input is read only while the receiver can take it: the VM runs, the receiver is not in
    /// loopback, the fd has not ended and the FIFO has room.
    private var wantsInput: Bool {
        running && input != nil && !inputEnded && !loopback && rx.count < receiveCapacity
    }

    /// Watches or unwatches the input fd to match `wantsInput` (not from the exit path).
    private func syncInputWatch() {
        guard let input else { return }
        if wantsInput, !watching {
            do {
                try host.watch(fd: input.fd, events: .readable, token: Self.inputToken)
                watching = true
            } catch {
                inputEnded = true
                host.log(.error, "serial input disabled: \(error)")
            }
        } else if !wantsInput, watching {
            host.unwatch(fd: input.fd)
            watching = false
        }
    }

    /// From the exit path: once the guest has drained the FIFO to half (to avoid re-watching per
    /// byte), ask the event thread to resume watching the input.
    private func requestInputResume() {
        guard !watching, !resumePosted, wantsInput, rx.count <= receiveCapacity / 2 else { return }
        resumePosted = true
        host.postWork(token: Self.resumeInputWork)
    }

    func workPosted(token: UInt64) {
        guard token == Self.resumeInputWork else { return }
        resumePosted = false
        syncInputWatch()
    }

    func fdReady(token: UInt64, events: FDEvents) {
        guard token == Self.inputToken, let input else { return }
        guard wantsInput else { return syncInputWatch() }
        let room = receiveCapacity - rx.count
        // One read per readiness: stdin may be a blocking fd, and poll only promised one read.
        let result = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: ReceiveFIFO.depth) { buffer in
            let n = read(input.fd, buffer.baseAddress, room)
            if n > 0 {
                for i in 0..<n { rx.push(buffer[i]) }
            }
            return (n, errno)
        }
        switch result.0 {
        case 1...:
            noteReceiveActivity()
        case 0:
            inputEnded = true
        default:
            if result.1 != EAGAIN, result.1 != EWOULDBLOCK, result.1 != EINTR {
                inputEnded = true
                host.log(.error, "serial input stopped: read failed: \(errnoText(result.1))")
            }
        }
        syncInputWatch()
        updateIRQ()
    }

    // MARK: state

    /// Version 1: IER, LCR, MCR, SCR, FCR (u8 each), divisor (u16), LSR error bits, MSR delta
    /// bits (u8 each), THRE and timeout interrupt latches (bool each), then the receive FIFO
    /// oldest first as a u32 count and its bytes. The transmit FIFO is always empty.
    func save(to state: inout StateWriter) {
        state.write(ier)
        state.write(lcr)
        state.write(mcr)
        state.write(scr)
        state.write(fcr)
        state.write(divisor)
        state.write(lineErrors)
        state.write(modemDeltas)
        state.write(thrInterrupt)
        state.write(timeoutInterrupt)
        state.write(bytes: rx.contents)
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("serial16550 state version \(version) is unknown (this plugin writes 1)") }
        let ier: UInt8 = try state.read()
        let lcr: UInt8 = try state.read()
        let mcr: UInt8 = try state.read()
        let scr: UInt8 = try state.read()
        let fcr: UInt8 = try state.read()
        let divisor: UInt16 = try state.read()
        let lineErrors: UInt8 = try state.read()
        let modemDeltas: UInt8 = try state.read()
        let thrInterrupt = try state.readBool()
        let timeoutInterrupt = try state.readBool()
        let received = try state.readBytes(maxCount: ReceiveFIFO.depth)
        try state.finish()

        guard ier & ~IER.writable == 0 else { throw StateError("IER \(hex(ier)) has reserved bits set") }
        guard mcr & ~MCR.writable == 0 else { throw StateError("MCR \(hex(mcr)) has reserved bits set") }
        guard fcr & ~FCR.kept == 0 else { throw StateError("FCR \(hex(fcr)) has bits that are never kept") }
        guard lineErrors & ~LSR.overrun == 0 else { throw StateError("LSR errors \(hex(lineErrors)) other than overrun") }
        guard modemDeltas & ~MSR.deltas == 0 else { throw StateError("MSR deltas \(hex(modemDeltas)) out of range") }
        let fifoMode = fcr & FCR.enable != 0
        guard fifoMode || received.count <= 1 else {
            throw StateError("\(received.count) received bytes without FIFOs (at most 1)")
        }
        guard !timeoutInterrupt || (fifoMode && !received.isEmpty) else {
            throw StateError("character timeout pending with \(fifoMode ? "an empty FIFO" : "FIFOs disabled")")
        }

        self.ier = ier
        self.lcr = lcr
        self.mcr = mcr
        self.scr = scr
        self.fcr = fcr
        self.divisor = divisor
        self.lineErrors = lineErrors
        self.modemDeltas = modemDeltas
        self.thrInterrupt = thrInterrupt
        self.timeoutInterrupt = timeoutInterrupt
        rx = ReceiveFIFO(contents: received)
        // The timeout count restarts: saved clock values would mean nothing on this host.
        cancelTimeoutTimer()
        lastReceiveActivity = host.now
        armTimeoutTimerIfNeeded()
        syncInputWatch()
        updateIRQ()
    }
}

private func hex(_ value: UInt8) -> String { "0x" + String(value, radix: 16) }
