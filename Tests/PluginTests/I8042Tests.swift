import Testing
import VeneerHarness
import VeneerHost
#if canImport(Glibc)
import Glibc
#endif

// The 8042 keyboard controller through its real .so, checked against the behaviour the IBM PC/AT
// and PS/2 technical references give the controller, the MF2 keyboard and the PS/2 mouse.
// Ports, bits, commands and replies are spelled as numbers on purpose: they come from those
// documents, not from the plugin.
private let dataPort: UInt16 = 0x60, commandPort: UInt16 = 0x64, port92: UInt16 = 0x92
private let obf: UInt8 = 0x01, sys: UInt8 = 0x04, a2: UInt8 = 0x08, unlocked: UInt8 = 0x10, auxb: UInt8 = 0x20
private let irq1: UInt32 = 1, irq12: UInt32 = 12
/// veneer_plugin.h's stop reasons.
private let stopPowerOff: UInt32 = 1, stopReset: UInt32 = 2

private func makeKBC(_ parameters: [String: ParameterValidation.Input] = [:]) throws -> PluginHarness {
    try PluginHarness(plugin: "i8042", parameters: parameters)
}

extension PluginHarness {
    fileprivate var status: UInt8 { UInt8(truncatingIfNeeded: read(port: commandPort)) }
    fileprivate func command(_ command: UInt8, _ data: UInt8? = nil) {
        write(port: commandPort, UInt64(command))
        if let data { write(port: dataPort, UInt64(data)) }
    }
    fileprivate func sendData(_ byte: UInt8) { write(port: dataPort, UInt64(byte)) }
    fileprivate func readData() -> UInt8 { UInt8(truncatingIfNeeded: read(port: dataPort)) }

    /// Reads port 0x60 while the status says the output buffer is full.
    fileprivate func drain(limit: Int = 64) -> [UInt8] {
        var bytes: [UInt8] = []
        while status & obf != 0, bytes.count < limit { bytes.append(readData()) }
        return bytes
    }

    /// Sends bytes to the keyboard and collects everything it answers.
    fileprivate func keyboard(_ bytes: UInt8...) -> [UInt8] {
        for byte in bytes { sendData(byte) }
        return drain()
    }

    /// Sends bytes to the mouse through D4 and collects the answers, checking each carries AUXB.
    fileprivate func mouse(_ bytes: UInt8...) -> [UInt8] {
        for byte in bytes { command(0xD4, byte) }
        var answer: [UInt8] = []
        while status & obf != 0, answer.count < 64 {
            #expect(status & auxb != 0, "mouse byte \(answer.count) without AUXB")
            answer.append(readData())
        }
        return answer
    }

    fileprivate func commandByte() -> UInt8 {
        command(0x20)
        return readData()
    }

    fileprivate func level(_ line: UInt32) -> Bool { host.irqLevels[line] ?? false }
}

/// A pipe whose read end the plugin opens through /proc/self/fd.
private final class ScancodePipe {
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

    deinit {
        close(readFD)
        close(writeFD)
    }
}

@Suite("i8042")
struct I8042Tests {
    @Test("power-on: ports claimed, status, command byte and output port")
    func powerOn() throws {
        let kbc = try makeKBC()
        #expect(kbc.host.regions.map { [$0.base, $0.length] } == [[0x60, 1], [0x64, 1], [0x92, 1]])
        // Not inhibited, nothing buffered, IBF clear, system flag clear after a cold start.
        #expect(kbc.status == unlocked)
        #expect(kbc.commandByte() == 0x41) // translation, keyboard interrupt
        #expect(kbc.status & a2 != 0) // the last write went to the command port
        kbc.command(0xD0)
        #expect(kbc.readData() == 0xCF) // out of reset, A20 open, lines idle high
        #expect(kbc.read(port: port92) == 0x00)
        // Port 0x60 with OBF clear repeats the last byte; it does not consume anything.
        #expect(kbc.readData() == 0xCF)
        #expect(kbc.host.irqEvents.map(\.level) == [true, false, true, false])
    }

    @Test("self-test AA answers 55, sets the system flag and resets the command byte")
    func selfTest() throws {
        let kbc = try makeKBC()
        kbc.command(0x60, 0x30) // both interfaces disabled, no interrupts, no translation
        #expect(kbc.commandByte() == 0x30)
        kbc.command(0xAA)
        #expect(kbc.status & obf != 0)
        #expect(kbc.readData() == 0x55)
        #expect(kbc.status & sys != 0)
        #expect(kbc.commandByte() == 0x45)
        // Interface tests pass.
        kbc.command(0xA9)
        #expect(kbc.readData() == 0x00)
        kbc.command(0xAB)
        #expect(kbc.readData() == 0x00)
    }

    @Test("command byte round trip; reserved bits 3 and 7 read 0; SYS and A2 in the status")
    func commandByteRoundTrip() throws {
        let kbc = try makeKBC()
        for value in [UInt8(0x00), 0x01, 0x02, 0x04, 0x10, 0x20, 0x40, 0x77, 0x65, 0x47] {
            kbc.command(0x60, value)
            #expect(kbc.status & a2 == 0, "a data write clears A2")
            #expect(kbc.commandByte() == value)
            #expect(kbc.status & sys == value & 0x04)
        }
        kbc.command(0x60, 0xFF)
        #expect(kbc.commandByte() == 0x77)
        // A7/A8 and AD/AE flip bits 5 and 4.
        kbc.command(0x60, 0x00)
        kbc.command(0xA7)
        kbc.command(0xAD)
        #expect(kbc.commandByte() == 0x30)
        kbc.command(0xA8)
        #expect(kbc.commandByte() == 0x10)
        kbc.command(0xAE)
        #expect(kbc.commandByte() == 0x00)
        // E0: T0 follows the keyboard clock (pulled low while disabled), T1 idles high.
        kbc.command(0xE0)
        #expect(kbc.readData() == 0x03)
        kbc.command(0xAD)
        kbc.command(0xE0)
        #expect(kbc.readData() == 0x02)
        kbc.command(0xC0)
        #expect(kbc.readData() & 0x80 != 0) // input port: keyboard not inhibited
        // An unsupported command changes nothing and is reported from the event thread.
        kbc.command(0xC8)
        #expect(kbc.status & obf == 0)
        #expect(kbc.commandByte() == 0x10)
        kbc.runPostedWork()
        #expect(kbc.host.logLines.contains { $0.contains("unsupported controller command") && $0.contains("0xc8") })
    }

    @Test("internal RAM 21-3F / 61-7F round trip")
    func internalRAM() throws {
        let kbc = try makeKBC()
        for address in UInt8(1)...0x1F { kbc.command(0x60 | address, address &* 7 &+ 0x80) }
        for address in UInt8(1)...0x1F {
            kbc.command(0x20 | address)
            #expect(kbc.readData() == address &* 7 &+ 0x80)
        }
        #expect(kbc.commandByte() == 0x41)
    }

    @Test("keyboard reset: FA then AA, IRQ 1 raised per byte and lowered by each read")
    func keyboardReset() throws {
        let kbc = try makeKBC()
        kbc.sendData(0xFF)
        #expect(kbc.status == unlocked | obf)
        #expect(kbc.level(irq1))
        #expect(kbc.readData() == 0xFA)
        // The read lowered the line and the next byte raised it again: an edge per byte.
        #expect(kbc.host.irqEvents.map(\.level) == [true, false, true])
        #expect(kbc.readData() == 0xAA)
        #expect(!kbc.level(irq1))
        #expect(kbc.status & obf == 0)
        #expect(kbc.host.irqEvents.map(\.line) == [1, 1, 1, 1])
        #expect(kbc.host.irqLevels[irq12] == nil)
    }

    @Test("keyboard commands: identify, echo, LEDs, scan code sets, typematic, resend, unknown")
    func keyboardCommands() throws {
        let kbc = try makeKBC()
        // Translation turns the MF2 ID's 83 into 41, as Linux's atkbd expects.
        #expect(kbc.keyboard(0xF2) == [0xFA, 0xAB, 0x41])
        kbc.command(0x60, 0x01) // translation off
        #expect(kbc.keyboard(0xF2) == [0xFA, 0xAB, 0x83])
        #expect(kbc.keyboard(0xEE) == [0xEE])
        #expect(kbc.keyboard(0xED, 0x07) == [0xFA, 0xFA])
        #expect(kbc.keyboard(0xF0, 0x00) == [0xFA, 0xFA, 0x02])
        #expect(kbc.keyboard(0xF0, 0x03) == [0xFA, 0xFA])
        #expect(kbc.keyboard(0xF0, 0x00) == [0xFA, 0xFA, 0x03])
        #expect(kbc.keyboard(0xF0, 0x05) == [0xFA, 0xFE]) // no set 5: resend, command abandoned
        #expect(kbc.keyboard(0xF3, 0x20) == [0xFA, 0xFA])
        #expect(kbc.keyboard(0xFE) == [0xFA]) // resend repeats the last byte sent
        #expect(kbc.keyboard(0x12) == [0xFE]) // not a command
        #expect(kbc.keyboard(0xF7) == [0xFE]) // set-3-only command: unknown here
        // A command in place of an argument starts over.
        #expect(kbc.keyboard(0xED, 0xF2) == [0xFA, 0xFA, 0xAB, 0x83])
        // F6 restores set 2; so do F5 and a reset.
        #expect(kbc.keyboard(0xF0, 0x01) == [0xFA, 0xFA])
        #expect(kbc.keyboard(0xF6) == [0xFA])
        #expect(kbc.keyboard(0xF0, 0x00) == [0xFA, 0xFA, 0x02])
        #expect(kbc.keyboard(0xF0, 0x03) == [0xFA, 0xFA])
        #expect(kbc.keyboard(0xF5) == [0xFA])
        #expect(kbc.keyboard(0xF4) == [0xFA])
        #expect(kbc.keyboard(0xF0, 0x00) == [0xFA, 0xFA, 0x02])
        #expect(kbc.keyboard(0xF0, 0x03) == [0xFA, 0xFA])
        #expect(kbc.keyboard(0xFF) == [0xFA, 0xAA])
        #expect(kbc.keyboard(0xF0, 0x00) == [0xFA, 0xFA, 0x02])
        // Reset, enable and defaults flush what the keyboard had not sent yet.
        #expect(kbc.keyboard(0xF2, 0xFF) == [0xFA, 0xFA, 0xAA])
        // With translation the set number is translated too (2 -> 41).
        kbc.command(0x60, 0x41)
        #expect(kbc.keyboard(0xF0, 0x00) == [0xFA, 0xFA, 0x41])
    }

    @Test("aux device behind D4: reset, identify, settings, status request and IRQ 12")
    func auxCommands() throws {
        let kbc = try makeKBC()
        kbc.command(0x60, 0x43) // both interrupts
        kbc.command(0xD4, 0xFF)
        #expect(kbc.status == unlocked | obf | auxb)
        #expect(kbc.level(irq12))
        #expect(!kbc.level(irq1))
        #expect(kbc.readData() == 0xFA)
        #expect(kbc.readData() == 0xAA)
        #expect(kbc.readData() == 0x00)
        #expect(!kbc.level(irq12))
        #expect(kbc.status & (obf | auxb) == 0)
        #expect(kbc.host.irqEvents.map(\.line).allSatisfy { $0 == irq12 })
        #expect(kbc.host.irqEvents.map(\.level) == [true, false, true, false, true, false])

        #expect(kbc.mouse(0xF2) == [0xFA, 0x00])
        // Defaults: stream mode, reporting off, 1:1, 4 counts/mm, 100 samples/s.
        #expect(kbc.mouse(0xE9) == [0xFA, 0x00, 0x02, 100])
        #expect(kbc.mouse(0xF3, 200, 0xE8, 0x03, 0xE7, 0xF4) == [0xFA, 0xFA, 0xFA, 0xFA, 0xFA, 0xFA])
        #expect(kbc.mouse(0xE9) == [0xFA, 0x30, 0x03, 200])
        #expect(kbc.mouse(0xE6, 0xF5, 0xF0) == [0xFA, 0xFA, 0xFA])
        #expect(kbc.mouse(0xE9) == [0xFA, 0x40, 0x03, 200])
        #expect(kbc.mouse(0xEB) == [0xFA, 0x08, 0x00, 0x00]) // remote read: no motion
        #expect(kbc.mouse(0xF3, 55) == [0xFA, 0xFE]) // not a PS/2 rate
        #expect(kbc.mouse(0xE8, 0x04) == [0xFA, 0xFE])
        #expect(kbc.mouse(0xF6, 0xE9) == [0xFA, 0xFA, 0x40, 0x02, 100]) // defaults keep the mode
        #expect(kbc.mouse(0x42) == [0xFE])
        // Wrap mode echoes until EC.
        #expect(kbc.mouse(0xEE, 0x12, 0xE9, 0xEC, 0xF2) == [0xFA, 0x12, 0xE9, 0xFA, 0xFA, 0x00])
        #expect(kbc.mouse(0xFF, 0xE9) == [0xFA, 0xAA, 0x00, 0xFA, 0x00, 0x02, 100])
    }

    @Test("D2/D3 place a byte as if from the keyboard / the aux device (Linux's AUX loop test)")
    func writeOutputBuffers() throws {
        let kbc = try makeKBC()
        kbc.command(0x60, 0x03)
        kbc.command(0xD3, 0x5A)
        #expect(kbc.status == unlocked | obf | auxb)
        #expect(kbc.level(irq12))
        #expect(kbc.readData() == 0x5A)
        kbc.command(0xD2, 0xA5)
        #expect(kbc.status == unlocked | obf)
        #expect(kbc.level(irq1))
        #expect(kbc.readData() == 0xA5)
        #expect(!kbc.level(irq1) && !kbc.level(irq12))
    }

    @Test("interrupts stay low while the command byte's enable bits are clear")
    func interruptsSuppressed() throws {
        let kbc = try makeKBC()
        kbc.command(0x60, 0x40) // translation only
        kbc.host.clearIRQEvents()
        #expect(kbc.keyboard(0xF2) == [0xFA, 0xAB, 0x41])
        #expect(kbc.mouse(0xF2) == [0xFA, 0x00])
        #expect(kbc.host.irqEvents.isEmpty)
        // Enabling while a byte waits raises the line at once.
        kbc.sendData(0xEE)
        #expect(kbc.host.irqEvents.isEmpty)
        kbc.command(0x60, 0x41)
        #expect(kbc.level(irq1))
        #expect(kbc.readData() == 0xEE)
        #expect(!kbc.level(irq1))
        kbc.command(0x60, 0x40)
        kbc.command(0xD4, 0xF2)
        kbc.command(0x60, 0x42)
        #expect(kbc.level(irq12))
        // Disabling the interrupt lowers the line; the byte stays.
        kbc.command(0x60, 0x40)
        #expect(!kbc.level(irq12))
        #expect(kbc.drain() == [0xFA, 0x00])
    }

    @Test("a disabled interface holds the device's bytes; sending to the keyboard enables it again")
    func disabledInterfaceHoldsBytes() throws {
        let kbc = try makeKBC()
        kbc.sendData(0xFF)
        kbc.command(0xAD)
        #expect(kbc.readData() == 0xFA)
        #expect(kbc.status & obf == 0) // AA waits in the keyboard
        kbc.command(0xAE)
        #expect(kbc.status & obf != 0)
        #expect(kbc.readData() == 0xAA)

        // Aux bytes wait while the aux interface is disabled; keyboard bytes overtake them.
        kbc.command(0xD4, 0xF2)
        kbc.command(0xA7)
        kbc.sendData(0xEE)
        #expect(kbc.drain() == [0xFA, 0xEE])
        kbc.command(0xA8)
        #expect(kbc.status & auxb != 0)
        #expect(kbc.drain() == [0x00])

        kbc.command(0xAD)
        #expect(kbc.keyboard(0xEE) == [0xEE])
        #expect(kbc.commandByte() & 0x10 == 0)
    }

    @Test("a controller reply overwrites an unread device byte, as the 8042 documentation warns")
    func controllerReplyOverwrites() throws {
        let kbc = try makeKBC()
        kbc.sendData(0xFF) // FA in the buffer, AA queued
        kbc.command(0x20)
        #expect(kbc.readData() == 0x41)
        #expect(kbc.readData() == 0xAA)
        #expect(kbc.status & obf == 0)
    }

    @Test("FE and the other pulse commands with bit 0 clear request a reset; the rest do not")
    func pulseResets() throws {
        let kbc = try makeKBC()
        kbc.command(0xFF)
        kbc.command(0xF1)
        kbc.command(0xFD)
        #expect(kbc.host.stopRequests.isEmpty)
        kbc.command(0xFE)
        #expect(kbc.host.stopRequests.map(\.reason) == [stopReset])
        kbc.command(0xF0)
        #expect(kbc.host.stopRequests.map(\.reason) == [stopReset, stopReset])
    }

    @Test("reset_action = poweroff turns every reset path into a power-off request")
    func resetActionPowerOff() throws {
        let kbc = try makeKBC(["reset_action": .string("poweroff")])
        kbc.command(0xFE)
        kbc.command(0xD1, 0xCE)
        kbc.write(port: port92, 0x01)
        #expect(kbc.host.stopRequests.map(\.reason) == [stopPowerOff, stopPowerOff, stopPowerOff])
    }

    @Test("output port: D1 latches A20 and the lines, D0 reads them back; bit 0 clear resets")
    func outputPort() throws {
        let kbc = try makeKBC()
        kbc.command(0xD1, 0xCD) // A20 closed
        #expect(kbc.host.stopRequests.isEmpty)
        kbc.command(0xD0)
        #expect(kbc.readData() == 0xCD)
        kbc.runPostedWork()
        #expect(kbc.host.logLines.contains { $0.contains("A20") })
        kbc.command(0xD1, 0xDF) // Linux's enable_a20_kbc
        kbc.command(0xFF) // and its null command
        #expect(kbc.host.stopRequests.isEmpty)
        // Bits 4 and 5 are not latched: they show which interrupt the output buffer drives.
        kbc.command(0xD0)
        #expect(kbc.readData() == 0xCF)
        kbc.command(0xD1, 0xFF)
        kbc.command(0xD4, 0xF2)
        kbc.command(0xD0)
        #expect(kbc.readData() == 0xEF)
        kbc.command(0xD1, 0xDE)
        #expect(kbc.host.stopRequests.map(\.reason) == [stopReset])
    }

    @Test("port 0x92: fast A20 latch and a reset on a rising edge of bit 0")
    func systemControlPortA() throws {
        let kbc = try makeKBC()
        kbc.write(port: port92, 0x02)
        #expect(kbc.read(port: port92) == 0x02)
        // The output port's A20 can close; the gate stays open through port 0x92: no warning.
        kbc.command(0xD1, 0xCD)
        kbc.runPostedWork()
        #expect(!kbc.host.logLines.contains { $0.contains("A20") })
        kbc.write(port: port92, 0x00)
        kbc.runPostedWork()
        #expect(kbc.host.logLines.contains { $0.contains("A20") })
        #expect(kbc.host.stopRequests.isEmpty)

        kbc.write(port: port92, 0x03)
        #expect(kbc.host.stopRequests.map(\.reason) == [stopReset])
        kbc.write(port: port92, 0x03) // no edge
        #expect(kbc.host.stopRequests.count == 1)
        kbc.write(port: port92, 0x02)
        kbc.write(port: port92, 0x01)
        #expect(kbc.host.stopRequests.map(\.reason) == [stopReset, stopReset])
    }

    @Test("port92 = false leaves port 0x92 to others")
    func withoutPort92() throws {
        let kbc = try makeKBC(["port92": .bool(false)])
        #expect(kbc.host.regions.map(\.base) == [0x60, 0x64])
        kbc.write(port: port92, 0x01)
        #expect(kbc.host.stopRequests.isEmpty)
        #expect(kbc.read(port: port92) == 0xFF)
    }

    @Test("device output is bounded: 16 bytes per device wait, the rest is dropped and reported")
    func queueOverflow() throws {
        let kbc = try makeKBC()
        kbc.command(0x60, 0x01)
        for _ in 0..<10 { kbc.sendData(0xF2) } // 30 reply bytes, none read
        let received = kbc.drain()
        // One in the output buffer and 16 in the keyboard: the first 17 bytes in order.
        let expected = Array(Array(repeating: [UInt8(0xFA), 0xAB, 0x83], count: 10).joined().prefix(17))
        #expect(received == expected)
        kbc.runPostedWork()
        #expect(kbc.host.logLines.contains { $0.contains("dropped 13 bytes") })
        #expect(kbc.keyboard(0xEE) == [0xEE])
        // The mouse has its own 16.
        for _ in 0..<6 { kbc.command(0xD4, 0xE9) } // 24 bytes
        #expect(kbc.drain().count == 17)
        kbc.runPostedWork()
        #expect(kbc.host.logLines.contains { $0.contains("aux output full: dropped 7 bytes") })
    }

    @Test("scancodes from a pipe arrive translated to set 1 with IRQ 1, or raw without translation")
    func injectedScancodes() throws {
        let pipe = try ScancodePipe()
        let kbc = try makeKBC(["input": .string(pipe.path)])
        #expect(kbc.host.watchedFDs.count == 1)
        // Set 2: A make, A break, Up make (E0 75), Up break (E0 F0 75).
        pipe.send([0x1C, 0xF0, 0x1C, 0xE0, 0x75, 0xE0, 0xF0, 0x75])
        #expect(kbc.pollFDs() == 1)
        #expect(kbc.level(irq1))
        #expect(kbc.drain() == [0x1E, 0x9E, 0xE0, 0x48, 0xE0, 0xC8])
        #expect(!kbc.level(irq1))

        kbc.command(0x60, 0x01)
        pipe.send([0x1C, 0xF0, 0x1C])
        kbc.runPostedWork()
        kbc.pollFDs()
        #expect(kbc.drain() == [0x1C, 0xF0, 0x1C])
    }

    @Test("flow control: input waits in the pipe while the keyboard buffer is full or scanning is off")
    func inputFlowControl() throws {
        let pipe = try ScancodePipe()
        let kbc = try makeKBC(["input": .string(pipe.path)])
        kbc.command(0x60, 0x01)
        let sent = (0..<100).map { UInt8(truncatingIfNeeded: $0 * 3 + 1) }
        pipe.send(sent)
        kbc.pollFDs() // 16 taken: one moves on into the output buffer
        kbc.pollFDs() // one more fills the keyboard's 16
        #expect(kbc.host.watchedFDs.isEmpty)
        var received: [UInt8] = []
        for _ in 0..<200 where received.count < sent.count {
            received += kbc.drain()
            kbc.runPostedWork()
            kbc.pollFDs()
        }
        #expect(received == sent)

        // Scanning disabled: the keyboard reads nothing until enabled again.
        #expect(kbc.keyboard(0xF5) == [0xFA])
        kbc.runPostedWork()
        pipe.send([0x2A])
        kbc.pollFDs()
        #expect(kbc.status & obf == 0)
        #expect(kbc.host.watchedFDs.isEmpty)
        #expect(kbc.keyboard(0xF4) == [0xFA])
        kbc.runPostedWork()
        kbc.pollFDs()
        #expect(kbc.drain() == [0x2A])
    }

    @Test("save → load → save is byte-identical and carries every register and queued byte")
    func saveLoadRoundTrip() throws {
        let kbc = try makeKBC()
        kbc.command(0x60, 0x03) // no translation, both interrupts
        kbc.command(0x65, 0x5A)
        kbc.command(0xD1, 0xDD)
        kbc.write(port: port92, 0x02)
        #expect(kbc.keyboard(0xF0, 0x03, 0xED, 0x05, 0xF3, 0x11).count == 6)
        kbc.command(0xD4, 0xF3) // FA in the output buffer, with AUXB
        kbc.command(0xD4, 40)
        kbc.command(0xD4, 0xE8) // the mouse awaits the resolution argument
        kbc.sendData(0xF2) // FA AB 83 queued behind the mouse's bytes...
        kbc.command(0xAD) // ...and held there by the disabled keyboard interface
        kbc.command(0xD1) // the controller awaits the output port byte
        let saved = try kbc.save()

        let copy = try makeKBC()
        try copy.load(saved)
        #expect(try copy.save() == saved)
        #expect(copy.level(irq12))
        try kbc.load(saved)
        #expect(try kbc.save() == saved)
        for harness in [kbc, copy] {
            #expect(harness.status == unlocked | obf | auxb | a2)
            harness.sendData(0xCF) // completes D1
            #expect(harness.drain() == [0xFA, 0xFA, 0xFA]) // F3, 40, E8
            harness.command(0xAE)
            #expect(harness.drain() == [0xFA, 0xAB, 0x83])
            #expect(harness.mouse(0x01, 0xE9) == [0xFA, 0xFA, 0x00, 0x01, 40])
            #expect(harness.keyboard(0xF0, 0x00) == [0xFA, 0xFA, 0x03])
            harness.command(0x25)
            #expect(harness.readData() == 0x5A)
            harness.command(0xD0)
            #expect(harness.readData() == 0xCF)
            #expect(harness.read(port: port92) == 0x02)
        }
    }

    @Test("malformed state is rejected and leaves the device unchanged")
    func malformedStateRejected() throws {
        let kbc = try makeKBC()
        kbc.sendData(0xF2)
        let good = try kbc.save()
        _ = kbc.drain()
        let before = try kbc.save()

        // Layout v1: 32 RAM bytes, 4 bools (A2 OBF AUXB break), pending, output buffer,
        // output port, port 0x92, keyboard (6 bytes), mouse (8 bytes), then the queue.
        let pendingAt = 36, queueAt = 54
        var bad: [[UInt8]] = (0..<good.count).map { Array(good.prefix($0)) }
        bad.append(good + [0])
        var reserved = good
        reserved[0] |= 0x80
        bad.append(reserved)
        var pending = good
        pending[pendingAt] = 0xAA
        bad.append(pending)
        var auxWithoutData = good
        auxWithoutData[33] = 0
        auxWithoutData[34] = 1
        bad.append(auxWithoutData)
        var emptyWhileWaiting = good
        emptyWhileWaiting[33] = 0 // OBF clear while AB 83 wait for an enabled keyboard
        bad.append(emptyWhileWaiting)
        var badSet = good
        badSet[41] = 4
        bad.append(badSet)
        var badRate = good
        badRate[50] = 55
        bad.append(badRate)
        var badSource = good
        badSource[queueAt + 4] = 2
        bad.append(badSource)
        let seventeen = Array(good.prefix(queueAt)) + [17, 0, 0, 0] + [UInt8](repeating: 0, count: 34)
        bad.append(seventeen)
        for blob in bad {
            #expect(throws: (any Error).self, "\(blob.count) bytes") { try kbc.load(blob) }
        }
        #expect(throws: (any Error).self) { try kbc.load(good, version: 2) }
        #expect(try kbc.save() == before)
        // The same offsets hold the values they were chosen for.
        #expect(good[33] == 1 && good[pendingAt] == 0 && good[41] == 2 && good[50] == 100)
        #expect(Array(good[queueAt...]) == [2, 0, 0, 0, 0, 0xAB, 0, 0x83])
    }

    @Test("reset returns to power-on state, lowers the lines and is idempotent")
    func resetIsIdempotent() throws {
        let fresh = try makeKBC().save()
        let kbc = try makeKBC()
        kbc.command(0x60, 0x47)
        kbc.command(0xD1, 0xDD)
        kbc.write(port: port92, 0x02)
        _ = kbc.keyboard(0xF0, 0x01)
        kbc.command(0xD4, 0xFF)
        kbc.sendData(0xF2)
        #expect(kbc.level(irq12))
        try kbc.reset()
        #expect(!kbc.level(irq1) && !kbc.level(irq12))
        #expect(try kbc.save() == fresh)
        #expect(kbc.status == unlocked)
        kbc.host.clearIRQEvents()
        try kbc.reset()
        #expect(try kbc.save() == fresh)
        #expect(kbc.host.irqEvents.isEmpty)
        #expect(kbc.host.stopRequests.isEmpty)
    }

    @Test("creation errors: one line for both interrupts, an input path that cannot be opened")
    func creationErrors() {
        #expect(throws: (any Error).self) { try makeKBC(["irq_kbd": .int(12)]) }
        let path = "/nonexistent-veneer-dir/keys.fifo"
        let error = #expect(throws: (any Error).self) { try makeKBC(["input": .string(path)]) }
        #expect((error.map { "\($0)" } ?? "").contains(path))
        #expect(throws: (any Error).self) { try makeKBC(["reset_action": .string("halt")]) }
    }

    @Test("the harness conformance suite passes", arguments: [[:], ["reset_action": "poweroff", "port92": "false"]] as [[String: String]])
    func conformance(parameters: [String: String]) {
        let report = ConformanceSuite(plugin: "i8042", parameters: parameters).run()
        #expect(report.allPassed, "\(report.checks.map(\.line).joined(separator: "\n"))")
    }
}
