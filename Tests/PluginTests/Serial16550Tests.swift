import Testing
import VeneerHarness
#if canImport(Glibc)
import Glibc
#endif

// The 16550A through its real .so, checked against the PC16550D datasheet's register behaviour.
// Register offsets from the COM1 base, and the bits the tests use, spelled as numbers on purpose:
// they come from the datasheet, not from the plugin.
private let com1: UInt16 = 0x3f8
private let rbr: UInt16 = 0, thr: UInt16 = 0, dll: UInt16 = 0
private let ier: UInt16 = 1, dlm: UInt16 = 1
private let iir: UInt16 = 2, fcr: UInt16 = 2
private let lcr: UInt16 = 3, mcr: UInt16 = 4, lsr: UInt16 = 5, msr: UInt16 = 6, scr: UInt16 = 7

private let irq4: UInt32 = 4
/// Four 10-bit characters at divisor 1 (115200 baud): 347_222 ns.
private let timeoutAt115200: UInt64 = 4 * 10 * 1_000_000_000 / 115_200

private func makeUART(output: String = "none", input: String = "none") throws -> PluginHarness {
    try PluginHarness(plugin: "serial16550", parameters: ["output": .string(output), "input": .string(input)])
}

extension PluginHarness {
    fileprivate func reg(_ offset: UInt16) -> UInt8 { UInt8(truncatingIfNeeded: read(port: com1 + offset)) }
    fileprivate func reg(_ offset: UInt16, _ value: UInt8) { write(port: com1 + offset, UInt64(value)) }
    fileprivate var line: Bool { host.irqLevels[irq4] ?? false }

    fileprivate func setDivisor(_ divisor: UInt16, lineControl: UInt8 = 0x03) {
        reg(lcr, 0x80 | lineControl)
        reg(dll, UInt8(truncatingIfNeeded: divisor))
        reg(dlm, UInt8(truncatingIfNeeded: divisor >> 8))
        reg(lcr, lineControl)
    }

    /// Reads RBR while LSR says data is ready.
    fileprivate func drain(limit: Int = 64) -> [UInt8] {
        var bytes: [UInt8] = []
        while reg(lsr) & 0x01 != 0, bytes.count < limit { bytes.append(reg(rbr)) }
        return bytes
    }
}

/// A pipe whose read end the plugin opens through /proc/self/fd.
private final class TestPipe {
    let readFD: Int32
    var writeFD: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw HarnessError("pipe: \(errno)") }
        readFD = fds[0]
        writeFD = fds[1]
    }

    var path: String { "/proc/self/fd/\(readFD)" }

    func send(_ bytes: [UInt8]) {
        let n = bytes.withUnsafeBytes { write(writeFD, $0.baseAddress, $0.count) }
        #expect(n == bytes.count)
    }

    func closeWriter() {
        if writeFD >= 0 { close(writeFD) }
        writeFD = -1
    }

    deinit {
        close(readFD)
        closeWriter()
    }
}

private func temporaryPath(_ tag: String) -> String {
    "/tmp/veneer-serial16550-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}

private func contents(of path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return result }
        result += buffer.prefix(n)
    }
}

@Suite("serial16550")
struct Serial16550Tests {
    @Test("power-on register values and the claimed ports")
    func resetValues() throws {
        let uart = try makeUART()
        #expect(uart.host.regions.map { [$0.base, $0.length] } == [[0x3f8, 8]])
        #expect(uart.reg(ier) == 0x00)
        #expect(uart.reg(iir) == 0x01)
        #expect(uart.reg(lcr) == 0x00)
        #expect(uart.reg(mcr) == 0x00)
        #expect(uart.reg(lsr) == 0x60)
        // Not in loopback: the host side looks like a ready terminal (CTS, DSR, DCD; no RI, no deltas).
        #expect(uart.reg(msr) == 0xB0)
        #expect(uart.reg(scr) == 0x00)
        #expect(uart.host.irqEvents.isEmpty)
        #expect(!uart.line)
    }

    @Test("port and irq parameters place the device")
    func otherPort() throws {
        let uart = try PluginHarness(plugin: "serial16550", parameters: ["port": .int(0x2f8), "irq": .int(3), "output": .string("none")])
        #expect(uart.host.regions.map { [$0.base, $0.length] } == [[0x2f8, 8]])
        uart.write(port: 0x2f8 + 4, 0x08)
        uart.write(port: 0x2f8 + 1, 0x02)
        #expect(uart.host.irqLevels == [3: true])
    }

    @Test("DLAB switches offsets 0 and 1 to the divisor latch")
    func divisorLatch() throws {
        let uart = try makeUART()
        uart.reg(ier, 0x05)
        uart.reg(lcr, 0x83)
        #expect(uart.reg(dll) == 0x0C) // power-on divisor: 9600 baud
        #expect(uart.reg(dlm) == 0x00)
        uart.reg(dll, 0x34)
        uart.reg(dlm, 0x12)
        #expect(uart.reg(dll) == 0x34)
        #expect(uart.reg(dlm) == 0x12)
        // A 16-bit access is split into byte cycles like the ISA bus does: DLL then DLM.
        #expect(uart.read(port: com1, size: 2) == 0x1234)
        uart.reg(lcr, 0x03)
        #expect(uart.reg(ier) == 0x05)
        #expect(uart.reg(lsr) & 0x01 == 0) // offset 0 is RBR again, and nothing was received
        uart.reg(lcr, 0x83)
        #expect(uart.reg(dll) == 0x34)
        #expect(uart.reg(dlm) == 0x12)
    }

    @Test("LCR and SCR keep what is written; IER and MCR keep only their defined bits")
    func registerRoundTrips() throws {
        let uart = try makeUART()
        for value in [UInt8(0x00), 0x1B, 0x7F, 0x55] {
            uart.reg(lcr, value)
            #expect(uart.reg(lcr) == value)
        }
        for value in UInt8.min...UInt8.max {
            uart.reg(scr, value)
            #expect(uart.reg(scr) == value)
        }
        uart.reg(ier, 0xFF)
        #expect(uart.reg(ier) == 0x0F)
        uart.reg(ier, 0x00)
        uart.reg(mcr, 0xEF)
        #expect(uart.reg(mcr) == 0x0F)
    }

    @Test("THRE interrupt: raised when enabled with OUT2, cleared by reading IIR")
    func thrEmptyInterrupt() throws {
        let uart = try makeUART()
        uart.reg(mcr, 0x08)
        #expect(!uart.line)
        uart.reg(ier, 0x02)
        #expect(uart.line)
        #expect(uart.reg(iir) == 0x02)
        #expect(!uart.line)
        #expect(uart.reg(iir) == 0x01)
        // Linux's UART_BUG_THRE probe: re-enabling ETBEI with THR empty raises THRE again.
        uart.reg(ier, 0x00)
        uart.reg(ier, 0x02)
        #expect(uart.reg(iir) == 0x02)
        #expect(uart.reg(iir) == 0x01)
    }

    @Test("a THR write clears THRE; the byte leaves at once so it rises again (a fresh edge)")
    func thrWriteClearsThre() throws {
        let uart = try makeUART()
        uart.reg(mcr, 0x08)
        uart.reg(ier, 0x02)
        #expect(uart.line)
        uart.host.clearIRQEvents()
        uart.reg(thr, 0x41)
        #expect(uart.host.irqEvents.map(\.level) == [false, true])
        #expect(uart.reg(lsr) == 0x60)
        #expect(uart.reg(iir) == 0x02)
        // Without ETBEI the THR write leaves the line alone.
        uart.reg(ier, 0x00)
        uart.host.clearIRQEvents()
        uart.reg(thr, 0x42)
        #expect(uart.host.irqEvents.isEmpty)
    }

    @Test("INTR reaches the IRQ line only while MCR OUT2 is set, and only level changes are driven")
    func out2GatesTheLine() throws {
        let uart = try makeUART()
        uart.reg(ier, 0x02)
        #expect(uart.host.irqEvents.isEmpty)
        uart.reg(mcr, 0x03) // DTR and RTS, no OUT2
        #expect(uart.host.irqEvents.isEmpty)
        uart.reg(mcr, 0x0B)
        #expect(uart.host.irqEvents.map(\.level) == [true])
        uart.reg(mcr, 0x0F) // OUT1 does not matter
        #expect(uart.host.irqEvents.map(\.level) == [true])
        uart.reg(mcr, 0x03)
        #expect(uart.host.irqEvents.map(\.level) == [true, false])
        // The interrupt is still pending inside the UART.
        #expect(uart.reg(iir) == 0x02)
    }

    @Test("loopback: TX comes back as RX with DR and the RX-data interrupt; nothing is output")
    func loopbackReceive() throws {
        let path = temporaryPath("loop")
        defer { unlink(path) }
        let uart = try makeUART(output: path)
        uart.reg(mcr, 0x18) // loopback + OUT2
        uart.reg(ier, 0x01)
        uart.reg(thr, 0x41)
        #expect(uart.reg(lsr) == 0x61)
        #expect(uart.reg(iir) == 0x04)
        // Loopback forces the OUT2 pin inactive, and on a PC that pin gates the IRQ line.
        #expect(!uart.line)
        #expect(uart.reg(rbr) == 0x41)
        #expect(uart.reg(lsr) == 0x60)
        #expect(uart.reg(iir) == 0x01)
        #expect(contents(of: path).isEmpty)

        // Data still waiting when loopback ends interrupts through OUT2.
        uart.reg(thr, 0x42)
        uart.reg(mcr, 0x08)
        #expect(uart.line)
        #expect(uart.reg(rbr) == 0x42)
        #expect(!uart.line)
    }

    @Test("loopback modem lines: DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD, with deltas and the MSR interrupt")
    func loopbackModemLines() throws {
        let uart = try makeUART()
        uart.reg(mcr, 0x1A) // loopback, RTS, OUT2: Linux's autoconfig expects MSR & 0xF0 == 0x90
        #expect(uart.reg(msr) & 0xF0 == 0x90)
        uart.reg(mcr, 0x11)
        #expect(uart.reg(msr) & 0xF0 == 0x20)
        uart.reg(mcr, 0x14)
        #expect(uart.reg(msr) & 0xF0 == 0x40)
        _ = uart.reg(msr)

        uart.reg(ier, 0x08)
        #expect(uart.reg(iir) == 0x01)
        uart.reg(mcr, 0x11) // RI 1→0 (trailing edge), DSR 0→1
        #expect(uart.reg(iir) == 0x00)
        #expect(uart.reg(msr) == 0x26) // DSR | TERI | DDSR
        #expect(uart.reg(msr) == 0x20) // reading cleared the deltas
        #expect(uart.reg(iir) == 0x01)
        uart.reg(mcr, 0x13)
        #expect(uart.reg(msr) == 0x31) // CTS | DSR | DCTS
        uart.reg(mcr, 0x1B)
        #expect(uart.reg(msr) == 0xB8) // DCD | CTS | DSR | DDCD
    }

    @Test("FIFO receive trigger levels 1, 4, 8 and 14", arguments: [(UInt8(0x00), 1), (0x40, 4), (0x80, 8), (0xC0, 14)])
    func triggerLevels(bits: UInt8, level: Int) throws {
        let uart = try makeUART()
        uart.reg(mcr, 0x10)
        uart.reg(fcr, bits | 0x01)
        uart.reg(ier, 0x01)
        #expect(uart.reg(iir) == 0xC1)
        for i in 1...16 {
            uart.reg(thr, UInt8(i))
            #expect(uart.reg(iir) == (i >= level ? 0xC4 : 0xC1), "after \(i) bytes")
        }
        // Reading down to the trigger level keeps the interrupt; one byte fewer withdraws it.
        for expected in 1...(16 - level) { #expect(uart.reg(rbr) == UInt8(expected)) }
        #expect(uart.reg(iir) == 0xC4)
        #expect(uart.reg(rbr) == UInt8(17 - level))
        #expect(uart.reg(iir) == 0xC1)
        // FCR bit 1 clears the receive FIFO.
        uart.reg(fcr, bits | 0x03)
        #expect(uart.reg(lsr) == 0x60)
        #expect(uart.reg(iir) == 0xC1)
        // Disabling the FIFOs: IIR bits 6-7 read 00 again.
        uart.reg(fcr, 0x00)
        #expect(uart.reg(iir) == 0x01)
    }

    @Test("overrun: a full RX FIFO sets OE, keeps its 16 bytes and raises a line-status interrupt")
    func overrunInFIFOMode() throws {
        let uart = try makeUART()
        uart.reg(mcr, 0x10)
        uart.reg(fcr, 0xC1)
        uart.reg(ier, 0x05)
        for i in 0..<16 { uart.reg(thr, UInt8(i)) }
        #expect(uart.reg(iir) == 0xC4)
        uart.reg(thr, 0xAA)
        #expect(uart.reg(iir) == 0xC6) // line status outranks received data
        #expect(uart.reg(lsr) == 0x63)
        #expect(uart.reg(lsr) == 0x61) // reading LSR cleared OE
        #expect(uart.reg(iir) == 0xC4)
        #expect(uart.drain() == (0..<16).map { UInt8($0) })
    }

    @Test("overrun without FIFOs: the new character overwrites RBR")
    func overrunInCharacterMode() throws {
        let uart = try makeUART()
        uart.reg(mcr, 0x10)
        uart.reg(thr, 0x31)
        #expect(uart.reg(lsr) == 0x61)
        uart.reg(thr, 0x32)
        #expect(uart.reg(lsr) == 0x63)
        #expect(uart.reg(rbr) == 0x32)
        #expect(uart.reg(lsr) == 0x60)
    }

    @Test("character timeout after four character times below the trigger level")
    func characterTimeout() throws {
        let pipe = try TestPipe()
        let uart = try makeUART(input: pipe.path)
        uart.setDivisor(1)
        uart.reg(fcr, 0xC1) // trigger 14
        uart.reg(mcr, 0x08)
        uart.reg(ier, 0x01)
        pipe.send(Array("hi".utf8))
        #expect(uart.pollFDs() == 1)
        #expect(uart.reg(lsr) == 0x61)
        #expect(uart.reg(iir) == 0xC1)
        uart.advance(nanoseconds: timeoutAt115200 - 10_000)
        #expect(uart.reg(iir) == 0xC1)
        #expect(!uart.line)
        uart.advance(nanoseconds: 20_000)
        #expect(uart.reg(iir) == 0xCC)
        #expect(uart.line)
        // Reading a character clears the timeout and restarts the count.
        #expect(uart.reg(rbr) == UInt8(ascii: "h"))
        #expect(uart.reg(iir) == 0xC1)
        #expect(!uart.line)
        uart.advance(nanoseconds: timeoutAt115200 + 1)
        #expect(uart.reg(iir) == 0xCC)
        #expect(uart.reg(rbr) == UInt8(ascii: "i"))
        // An empty FIFO never times out.
        uart.advance(nanoseconds: 10 * timeoutAt115200)
        #expect(uart.reg(iir) == 0xC1)
        #expect(!uart.line)
    }

    @Test("the timeout follows the baud rate: divisor 12 (9600 baud) waits about 4.17 ms")
    func characterTimeoutAt9600() throws {
        let uart = try makeUART()
        uart.reg(lcr, 0x03) // power-on divisor 12
        uart.reg(mcr, 0x10)
        uart.reg(fcr, 0x41) // trigger 4
        uart.reg(ier, 0x01)
        uart.reg(thr, 0x55)
        uart.advance(nanoseconds: 4_100_000)
        #expect(uart.reg(iir) == 0xC1)
        uart.advance(nanoseconds: 100_000)
        #expect(uart.reg(iir) == 0xCC)
    }

    @Test("output to a file holds exactly the transmitted bytes, whatever LCR says")
    func outputToFile() throws {
        let path = temporaryPath("out")
        defer { unlink(path) }
        // A stale file is truncated.
        let stale = open(path, O_WRONLY | O_CREAT, 0o600)
        _ = "stale contents".withCString { write(stale, $0, 14) }
        close(stale)

        let uart = try makeUART(output: path)
        #expect(contents(of: path).isEmpty)
        // LCR is still at power-on (5-bit words): a test kernel that never programs the UART
        // must still print whole bytes, since the host side is a byte stream.
        let message = Array("Hello, 16550!\r\n".utf8) + [0x00, 0xFF, 0x80]
        for byte in message { uart.reg(thr, byte) }
        // Divisor latch writes are not characters.
        uart.setDivisor(3)
        uart.reg(thr, 0xC1)
        #expect(contents(of: path) == message + [0xC1])
    }

    @Test("input from a pipe arrives in RBR with DR and the RX-data interrupt")
    func inputFromPipe() throws {
        let pipe = try TestPipe()
        let uart = try makeUART(input: pipe.path)
        uart.reg(mcr, 0x08)
        uart.reg(ier, 0x01)
        #expect(uart.host.watchedFDs.count == 1)
        pipe.send([0x61])
        uart.pollFDs()
        #expect(uart.reg(lsr) == 0x61)
        #expect(uart.line)
        #expect(uart.reg(iir) == 0x04)
        #expect(uart.reg(rbr) == 0x61)
        #expect(!uart.line)
        #expect(uart.reg(lsr) == 0x60)

        uart.reg(fcr, 0x01)
        pipe.send(Array("veneer".utf8))
        uart.runPostedWork()
        uart.pollFDs()
        #expect(uart.drain() == Array("veneer".utf8))
    }

    @Test("input from a named FIFO, then EOF stops the watch", .timeLimit(.minutes(1)))
    func inputFromNamedFIFO() throws {
        let path = temporaryPath("fifo")
        #expect(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        let uart = try makeUART(input: path)
        let writer = open(path, O_WRONLY | O_NONBLOCK)
        #expect(writer >= 0)
        uart.reg(fcr, 0x01)
        _ = "ok".withCString { write(writer, $0, 2) }
        close(writer)
        uart.runPostedWork()
        uart.pollFDs()
        #expect(uart.drain() == Array("ok".utf8))
        uart.runPostedWork()
        uart.pollFDs() // the writer is gone: EOF
        #expect(uart.host.watchedFDs.isEmpty)
    }

    @Test("flow control: input waits in the pipe while the RX FIFO is full; nothing is lost", arguments: [true, false])
    func flowControl(fifos: Bool) throws {
        let pipe = try TestPipe()
        let uart = try makeUART(input: pipe.path)
        if fifos { uart.reg(fcr, 0x01) }
        let sent = (0..<200).map { UInt8(truncatingIfNeeded: $0 * 7) }
        // A few bytes first, so that the rest arrives while the FIFO is partly full.
        pipe.send(Array(sent.prefix(5)))
        uart.pollFDs()
        pipe.send(Array(sent.dropFirst(5)))
        uart.pollFDs()
        // The FIFO is full (16 bytes, or RBR alone in 16450 mode) and the fd is no longer watched.
        #expect(uart.host.watchedFDs.isEmpty)
        var received = uart.drain()
        #expect(received.count == (fifos ? 16 : 1))
        for _ in 0..<1000 where received.count < sent.count {
            received += uart.drain()
            uart.runPostedWork()
            uart.pollFDs()
        }
        #expect(received == sent)
        #expect(uart.reg(lsr) == 0x60) // never an overrun
        pipe.closeWriter()
        uart.runPostedWork()
        uart.pollFDs()
        #expect(uart.host.watchedFDs.isEmpty)
    }

    @Test("loopback disconnects the host input until it ends")
    func loopbackHoldsInput() throws {
        let pipe = try TestPipe()
        let uart = try makeUART(input: pipe.path)
        uart.reg(mcr, 0x10)
        pipe.send([0x7A])
        uart.pollFDs()
        #expect(uart.reg(lsr) == 0x60)
        uart.reg(mcr, 0x00)
        uart.runPostedWork()
        uart.pollFDs()
        #expect(uart.drain() == [0x7A])
    }

    @Test("save → load → save is byte-identical and restores the registers")
    func saveLoadRoundTrip() throws {
        let uart = try makeUART()
        uart.setDivisor(0x0180, lineControl: 0x1F)
        uart.reg(scr, 0xA5)
        uart.reg(fcr, 0x81)
        uart.reg(mcr, 0x1B)
        uart.reg(ier, 0x0D)
        for byte in Array("state!".utf8) { uart.reg(thr, byte) }
        _ = uart.reg(rbr) // the ring's head moves off slot 0
        for i in 0..<12 { uart.reg(thr, UInt8(i)) } // overflows: OE
        uart.reg(mcr, 0x13) // modem deltas
        let saved = try uart.save()

        let copy = try makeUART()
        try copy.load(saved)
        #expect(try copy.save() == saved)
        try uart.load(saved)
        #expect(try uart.save() == saved)
        for r in [ier, lcr, mcr, scr, iir, lsr, msr] {
            #expect(copy.reg(r) == uart.reg(r), "register \(r)")
        }
        #expect(copy.drain() == uart.drain())
        copy.reg(lcr, 0x9F)
        #expect(copy.reg(dll) == 0x80)
        #expect(copy.reg(dlm) == 0x01)
    }

    @Test("malformed state is rejected and leaves the device unchanged")
    func malformedStateRejected() throws {
        let uart = try makeUART()
        uart.reg(fcr, 0x01)
        uart.reg(mcr, 0x10)
        uart.reg(thr, 0x33)
        let good = try uart.save()
        uart.reg(thr, 0x34)
        let before = try uart.save()

        var bad: [[UInt8]] = (0..<good.count).map { Array(good.prefix($0)) } // every truncation
        bad.append(good + [0])
        bad.append([UInt8](repeating: 0xFF, count: good.count))
        var reserved = good
        reserved[0] = 0xF1 // IER bits 4-7
        bad.append(reserved)
        // Layout v1: IER LCR MCR SCR FCR DLL DLM LSR-errors MSR-deltas THRE timeout, then the FIFO
        // as a u32 count and its bytes.
        var tooMany = Array(good.prefix(11)) + [17, 0, 0, 0]
        tooMany += [UInt8](repeating: 0x20, count: 17)
        bad.append(tooMany)
        for blob in bad {
            #expect(throws: (any Error).self, "\(blob.count) bytes") { try uart.load(blob) }
        }
        #expect(throws: (any Error).self) { try uart.load(good, version: 2) }
        #expect(try uart.save() == before)
    }

    @Test("reset returns to power-on state and is idempotent")
    func resetIsIdempotent() throws {
        let fresh = try makeUART().save()
        let uart = try makeUART()
        uart.setDivisor(1)
        uart.reg(scr, 0x77)
        uart.reg(fcr, 0xC1)
        uart.reg(mcr, 0x1F)
        uart.reg(thr, 0x01)
        uart.reg(ier, 0x0F)
        uart.reg(mcr, 0x08) // the pending interrupts now reach the line
        #expect(uart.line)
        try uart.reset()
        #expect(!uart.line)
        #expect(try uart.save() == fresh)
        #expect(uart.reg(lsr) == 0x60)
        #expect(uart.reg(iir) == 0x01)
        #expect(uart.reg(msr) == 0xB0)
        uart.host.clearIRQEvents()
        try uart.reset()
        #expect(try uart.save() == fresh)
        #expect(uart.host.irqEvents.isEmpty)
        #expect(uart.host.armedTimers.isEmpty)
    }

    @Test("an output file that cannot be created is a creation error naming the path")
    func badOutputPath() {
        let path = "/nonexistent-veneer-dir/com1.log"
        let error = #expect(throws: (any Error).self) { try makeUART(output: path) }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(path))
        #expect(text.contains("No such file or directory"))
    }

    @Test("output to a named FIFO: refused at once without a reader, unbuffered with one", .timeLimit(.minutes(1)))
    func outputToNamedFIFO() throws {
        let path = temporaryPath("outfifo")
        #expect(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        let error = #expect(throws: (any Error).self) { try makeUART(output: path) }
        #expect((error.map { "\($0)" } ?? "").contains(path))

        let reader = open(path, O_RDONLY | O_NONBLOCK)
        #expect(reader >= 0)
        defer { close(reader) }
        let uart = try makeUART(output: path)
        for byte in Array("fifo".utf8) { uart.reg(thr, byte) }
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = buffer.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
        #expect(Array(buffer.prefix(max(n, 0))) == Array("fifo".utf8))
    }

    @Test("an input path that cannot be opened, and ports past 0xffff, are creation errors")
    func badInputAndPort() {
        let path = "/nonexistent-veneer-dir/in.fifo"
        let error = #expect(throws: (any Error).self) { try makeUART(input: path) }
        #expect((error.map { "\($0)" } ?? "").contains(path))
        #expect(throws: (any Error).self) {
            try PluginHarness(plugin: "serial16550", parameters: ["port": .int(0xfffa), "output": .string("none")])
        }
        #expect(throws: (any Error).self) {
            try PluginHarness(plugin: "serial16550", parameters: ["irq": .int(24), "output": .string("none")])
        }
    }
}
