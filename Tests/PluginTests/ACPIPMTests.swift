import Testing
import VeneerHarness
import VeneerHost
#if canImport(Glibc)
import Glibc
#endif

// ACPI fixed hardware through the real .so, checked against the ACPI specification's fixed
// register semantics (PM1 event/control blocks, PM timer, GPE block). Ports and bits are
// spelled as numbers on purpose: they come from the specification and the documented FADT
// layout, not from the plugin.
private let pm1Status: UInt16 = 0x600, pm1Enable: UInt16 = 0x602, pm1Control: UInt16 = 0x604
private let pmTimer: UInt16 = 0x608, gpe0Status: UInt16 = 0x620, gpe0Enable: UInt16 = 0x622
private let smiCommand: UInt16 = 0xB2
private let tmrSts: UInt64 = 1 << 0, pwrbtnSts: UInt64 = 1 << 8, wakSts: UInt64 = 1 << 15
private let tmrEn: UInt64 = 1 << 0, pwrbtnEn: UInt64 = 1 << 8
private let sciEn: UInt64 = 1 << 0, slpEn: UInt64 = 1 << 13
private let sci: UInt32 = 9
/// veneer_plugin.h's stop reasons.
private let stopPowerOff: UInt32 = 1

private let frequency: UInt64 = 3_579_545
/// The first whole nanosecond at which `ticks` have elapsed.
private func nanoseconds(forTicks ticks: UInt64) -> UInt64 { (ticks * 1_000_000_000 + frequency - 1) / frequency }

private func makePM(_ parameters: [String: ParameterValidation.Input] = [:]) throws -> PluginHarness {
    try PluginHarness(plugin: "acpi-pm", parameters: parameters)
}

extension PluginHarness {
    fileprivate func reg16(_ port: UInt16) -> UInt64 { read(port: port, size: 2) }
    fileprivate func reg16(_ port: UInt16, _ value: UInt64) { write(port: port, value, size: 2) }
    fileprivate var timer: UInt64 { read(port: pmTimer, size: 4) }
    fileprivate var sciLevel: Bool { host.irqLevels[sci] ?? false }
    fileprivate func enableACPI() { write(port: smiCommand, 0xF0) }
}

/// A pipe whose read end the plugin opens through /proc/self/fd.
private final class ButtonPipe {
    let readFD: Int32
    let writeFD: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw HarnessError("pipe: \(errno)") }
        readFD = fds[0]
        writeFD = fds[1]
    }

    var path: String { "/proc/self/fd/\(readFD)" }

    func press() { #expect(write(writeFD, "x", 1) == 1) }

    deinit {
        close(readFD)
        close(writeFD)
    }
}

@Suite("acpi-pm")
struct ACPIPMTests {
    @Test("the FADT's default blocks are claimed; power-on registers are clear, legacy mode")
    func powerOn() throws {
        let pm = try makePM()
        #expect(pm.host.regions.map { [$0.base, $0.length] } == [[0x600, 4], [0x604, 2], [0x608, 4], [0x620, 4], [0xB2, 1]])
        #expect(pm.reg16(pm1Status) == 0)
        #expect(pm.reg16(pm1Enable) == 0)
        #expect(pm.reg16(pm1Control) == 0) // SCI_EN clear until ACPI_ENABLE
        #expect(pm.reg16(gpe0Status) == 0)
        #expect(pm.reg16(gpe0Enable) == 0)
        #expect(pm.read(port: smiCommand) == 0xFF) // write-only
        #expect(pm.host.irqEvents.isEmpty)
    }

    @Test("PM timer runs at 3579545 Hz on the manual clock", arguments: [UInt64(1_000_000_000), 250_000_000, 3_000_000_000])
    func timerFrequency(interval: UInt64) throws {
        let pm = try makePM()
        pm.advance(nanoseconds: 123_456_789)
        let start = pm.timer
        pm.advance(nanoseconds: interval)
        let end = pm.timer
        let ticks = (end &- start) & 0xFF_FFFF
        let expected = interval * frequency / 1_000_000_000
        #expect(ticks >= expected - 1 && ticks <= expected + 1, "\(ticks) ticks in \(interval) ns")
        #expect(end >> 24 == 0) // a 24-bit counter: bits 24-31 read 0
    }

    @Test("the counter wraps at 24 bits, and byte reads see the same count")
    func timerWraps() throws {
        let pm = try makePM()
        pm.advance(nanoseconds: nanoseconds(forTicks: (1 << 24) - 10))
        #expect(pm.timer == (1 << 24) - 10)
        #expect(pm.read(port: pmTimer + 2) == 0xFF)
        #expect(pm.read(port: pmTimer, size: 2) == 0xFFF6)
        pm.advance(nanoseconds: nanoseconds(forTicks: 20) + 1)
        #expect(pm.timer < 20)
        // Writes do not disturb it.
        pm.write(port: pmTimer, 0, size: 4)
        #expect(pm.timer >= 10 && pm.timer < 20)
    }

    @Test("TMR_STS sets when bit 23 toggles; with TMR_EN and SCI_EN the SCI fires on time")
    func timerStatusAndSCI() throws {
        let pm = try makePM()
        let created = pm.host.now
        let toggle = created + nanoseconds(forTicks: 1 << 23)
        pm.advance(nanoseconds: toggle - created - 1_000)
        #expect(pm.reg16(pm1Status) & tmrSts == 0)
        pm.advance(nanoseconds: 2_000)
        #expect(pm.reg16(pm1Status) & tmrSts != 0)
        pm.reg16(pm1Status, tmrSts)
        #expect(pm.reg16(pm1Status) & tmrSts == 0)
        #expect(pm.host.irqEvents.isEmpty) // neither enabled nor in ACPI mode

        pm.enableACPI()
        pm.reg16(pm1Enable, tmrEn)
        #expect(pm.host.armedTimers.count == 1)
        // Nothing reads a register here: the host timer alone must raise the SCI at the toggle.
        let next = created + nanoseconds(forTicks: 2 << 23)
        pm.advance(nanoseconds: next - pm.host.now + 1_000)
        #expect(pm.host.irqEvents.map(\.level) == [true])
        let raisedAt = pm.host.irqEvents.first?.time ?? 0
        #expect(raisedAt >= next - 1 && raisedAt <= next + 1)
        #expect(pm.host.irqEvents.map(\.line) == [sci])
        pm.reg16(pm1Status, tmrSts)
        #expect(!pm.sciLevel)
        pm.advance(nanoseconds: nanoseconds(forTicks: 1 << 23))
        #expect(pm.sciLevel)
        // TMR_EN off: no host timer, and the SCI falls with the enable.
        pm.reg16(pm1Enable, 0)
        #expect(!pm.sciLevel)
        #expect(pm.host.armedTimers.isEmpty)
    }

    @Test("PM1_STS is write-1-to-clear, per bit and per byte; writing 0 changes nothing")
    func statusWriteOneToClear() throws {
        let pipe = try ButtonPipe()
        let pm = try makePM(["power_button": .string(pipe.path)])
        pipe.press()
        pm.pollFDs()
        pm.advance(nanoseconds: nanoseconds(forTicks: 1 << 23) + 1)
        #expect(pm.reg16(pm1Status) == tmrSts | pwrbtnSts)
        pm.reg16(pm1Status, 0)
        #expect(pm.reg16(pm1Status) == tmrSts | pwrbtnSts)
        pm.reg16(pm1Status, 0x7FFE & ~pwrbtnSts) // bits that are clear or never set
        #expect(pm.reg16(pm1Status) == tmrSts | pwrbtnSts)
        pm.write(port: pm1Status + 1, 0x01) // high byte, bit 8
        #expect(pm.reg16(pm1Status) == tmrSts)
        pm.write(port: pm1Status, 0x01)
        #expect(pm.reg16(pm1Status) == 0)
        // A 32-bit access covers PM1_STS and PM1_EN: W1C below, plain write above.
        pm.write(port: pm1Status, 0x0100_FFFF, size: 4)
        #expect(pm.read(port: pm1Status, size: 4) == 0x0100_0000)
        // PM1_EN keeps only its defined bits: TMR, GBL, PWRBTN, SLPBTN, RTC.
        pm.reg16(pm1Enable, 0xFFFF)
        #expect(pm.reg16(pm1Enable) == 0x0721)
    }

    @Test("the SCI follows (PM1_STS & PM1_EN) while SCI_EN is set")
    func sciFollowsStatusAndEnable() throws {
        let pipe = try ButtonPipe()
        let pm = try makePM(["power_button": .string(pipe.path)])
        pm.enableACPI()
        pipe.press()
        pm.pollFDs()
        #expect(pm.reg16(pm1Status) & pwrbtnSts != 0)
        #expect(!pm.sciLevel) // not enabled
        pm.reg16(pm1Enable, pwrbtnEn)
        #expect(pm.sciLevel)
        pm.reg16(pm1Enable, 0)
        #expect(!pm.sciLevel)
        pm.reg16(pm1Enable, pwrbtnEn | 0x0620) // GBL, SLPBTN, RTC enables alone raise nothing
        #expect(pm.sciLevel)
        pm.write(port: smiCommand, 0xF1) // legacy mode: events would be SMIs
        #expect(!pm.sciLevel)
        pm.enableACPI()
        #expect(pm.sciLevel)
        pm.reg16(pm1Status, pwrbtnSts)
        #expect(!pm.sciLevel)
        #expect(pm.host.irqEvents.map(\.level) == [true, false, true, false, true, false])
    }

    @Test("PM1_CNT: BM_RLD and SLP_TYP read back, SLP_EN and GBL_RLS read 0, SCI_EN belongs to the hardware")
    func controlRegister() throws {
        let pm = try makePM()
        pm.reg16(pm1Control, 0x0C06 | sciEn) // SLP_TYP 3, GBL_RLS, BM_RLD, SCI_EN
        #expect(pm.reg16(pm1Control) == 0x0C02)
        pm.enableACPI()
        #expect(pm.reg16(pm1Control) == 0x0C03)
        pm.reg16(pm1Control, 0)
        #expect(pm.reg16(pm1Control) == sciEn)
        #expect(pm.host.stopRequests.isEmpty)
    }

    @Test("SLP_EN with SLP_TYP = 5 (the \\_S5 value) powers off, as a word or as the high byte")
    func sleepS5() throws {
        let pm = try makePM()
        pm.reg16(pm1Control, 5 << 10) // the type alone does nothing
        #expect(pm.host.stopRequests.isEmpty)
        pm.reg16(pm1Control, 5 << 10 | slpEn)
        #expect(pm.host.stopRequests.map(\.reason) == [stopPowerOff])
        pm.write(port: pm1Control + 1, 0x34) // SLP_EN | SLP_TYP 5 in bits 13 and 10-12
        #expect(pm.host.stopRequests.map(\.reason) == [stopPowerOff, stopPowerOff])
        #expect(pm.reg16(pm1Control) & slpEn == 0)

        let other = try makePM(["s5_slp_typ": .int(0)])
        other.reg16(pm1Control, 5 << 10 | slpEn)
        #expect(other.host.stopRequests.isEmpty)
        other.reg16(pm1Control, slpEn)
        #expect(other.host.stopRequests.map(\.reason) == [stopPowerOff])
    }

    @Test("other sleep types are ignored with a warning; WAK_STS lets a waiting OS carry on")
    func otherSleepTypesIgnored() throws {
        let pm = try makePM()
        for type: UInt64 in [0, 1, 3, 7] {
            pm.reg16(pm1Control, type << 10 | slpEn)
        }
        #expect(pm.host.stopRequests.isEmpty)
        #expect(pm.reg16(pm1Status) & wakSts != 0)
        pm.reg16(pm1Status, wakSts)
        #expect(pm.reg16(pm1Status) & wakSts == 0)
        pm.runPostedWork()
        #expect(pm.host.logLines.contains { $0.contains("ignored 4 request(s)") && $0.contains("SLP_TYP 7") })
    }

    @Test("SMI command: ACPI_ENABLE (F0) sets SCI_EN, ACPI_DISABLE (F1) clears it, others do nothing")
    func smiCommandSwitchesMode() throws {
        let pm = try makePM()
        pm.write(port: smiCommand, 0x42)
        #expect(pm.reg16(pm1Control) & sciEn == 0)
        pm.write(port: smiCommand, 0xF0)
        #expect(pm.reg16(pm1Control) & sciEn != 0)
        pm.write(port: smiCommand, 0x00)
        #expect(pm.reg16(pm1Control) & sciEn != 0)
        pm.write(port: smiCommand, 0xF1)
        #expect(pm.reg16(pm1Control) & sciEn == 0)

        // Without an SMI command port the platform is ACPI-only: SCI_EN from power-on, for good.
        let acpiOnly = try makePM(["smi_cmd_port": .int(0)])
        #expect(acpiOnly.host.regions.count == 4)
        #expect(acpiOnly.reg16(pm1Control) == sciEn)
        acpiOnly.reg16(pm1Control, 0)
        try acpiOnly.reset()
        #expect(acpiOnly.reg16(pm1Control) == sciEn)
    }

    @Test("the power button from a pipe sets PWRBTN_STS and raises the SCI once the guest listens")
    func powerButtonPress() throws {
        let pipe = try ButtonPipe()
        let pm = try makePM(["power_button": .string(pipe.path)])
        #expect(pm.host.watchedFDs.count == 1)
        // Legacy mode: the status sets, but nothing is listening.
        pipe.press()
        #expect(pm.pollFDs() == 1)
        #expect(pm.reg16(pm1Status) & pwrbtnSts != 0)
        #expect(!pm.sciLevel)
        #expect(pm.host.logLines.last?.contains("SCI_EN = 0") == true)
        pm.reg16(pm1Status, pwrbtnSts)

        pm.enableACPI()
        pm.reg16(pm1Enable, pwrbtnEn)
        pipe.press()
        pipe.press()
        pm.pollFDs()
        #expect(pm.reg16(pm1Status) & pwrbtnSts != 0)
        #expect(pm.sciLevel)
        #expect(pm.host.logLines.last == "power button pressed")
        #expect(pm.pollFDs() == 0) // both bytes were one press
        pm.reg16(pm1Status, pwrbtnSts)
        #expect(!pm.sciLevel)
    }

    @Test("a named FIFO power button survives its writers coming and going", .timeLimit(.minutes(1)))
    func powerButtonFIFO() throws {
        let path = "/tmp/veneer-acpi-pm-button-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        let pm = try makePM(["power_button": .string(path)])
        pm.enableACPI()
        pm.reg16(pm1Enable, pwrbtnEn)
        for press in 0..<2 {
            let writer = open(path, O_WRONLY | O_NONBLOCK)
            #expect(writer >= 0)
            #expect(write(writer, "p", 1) == 1)
            close(writer)
            pm.pollFDs()
            #expect(pm.sciLevel, "press \(press)")
            pm.reg16(pm1Status, pwrbtnSts)
            #expect(!pm.sciLevel)
            #expect(pm.pollFDs() == 0, "no end-of-file after the writer left")
            #expect(pm.host.watchedFDs.count == 1)
        }
    }

    @Test("GPE0: enables read back, status is write-1-to-clear and enabled status drives the SCI")
    func gpeBlock() throws {
        let pm = try makePM()
        pm.reg16(gpe0Enable, 0x8001)
        #expect(pm.reg16(gpe0Enable) == 0x8001)
        #expect(pm.read(port: gpe0Status, size: 4) == 0x8001_0000)
        pm.enableACPI()
        // No GPE source is wired: a set status comes from restored state.
        var state = try pm.save()
        state[6] = 0x01 // GPE0_STS bit 0 (layout v1: PM1_STS PM1_EN PM1_CNT GPE0_STS GPE0_EN timer)
        try pm.load(state)
        #expect(pm.reg16(gpe0Status) == 0x0001)
        #expect(pm.sciLevel)
        pm.reg16(gpe0Enable, 0)
        #expect(!pm.sciLevel)
        pm.reg16(gpe0Enable, 0x0001)
        #expect(pm.sciLevel)
        pm.reg16(gpe0Status, 0x0001)
        #expect(pm.reg16(gpe0Status) == 0)
        #expect(!pm.sciLevel)
    }

    @Test("save → load → save is byte-identical; the timer continues from the saved count")
    func saveLoadRoundTrip() throws {
        let pipe = try ButtonPipe()
        let pm = try makePM(["power_button": .string(pipe.path)])
        pm.enableACPI()
        pm.reg16(pm1Enable, pwrbtnEn | tmrEn)
        pm.reg16(pm1Control, 0x0402)
        pm.reg16(gpe0Enable, 0x00F0)
        pipe.press()
        pm.pollFDs()
        pm.advance(nanoseconds: 5_000_000_000) // two bit-23 toggles
        let saved = try pm.save()
        let count = pm.timer

        let copy = try makePM()
        try copy.load(saved)
        #expect(try copy.save() == saved)
        #expect(copy.timer == count)
        #expect(copy.sciLevel)
        for harness in [pm, copy] {
            #expect(harness.reg16(pm1Status) == tmrSts | pwrbtnSts)
            #expect(harness.reg16(pm1Enable) == pwrbtnEn | tmrEn)
            #expect(harness.reg16(pm1Control) == 0x0403)
            #expect(harness.reg16(gpe0Enable) == 0x00F0)
        }
        copy.advance(nanoseconds: 1_000_000_000)
        #expect((copy.timer &- count) & 0xFF_FFFF == frequency)
        // The copy armed its own toggle timer.
        #expect(copy.host.armedTimers.count == 1)
    }

    @Test("malformed state is rejected and leaves the device unchanged")
    func malformedStateRejected() throws {
        let pm = try makePM()
        pm.enableACPI()
        let good = try pm.save()
        pm.reg16(pm1Enable, pwrbtnEn)
        let before = try pm.save()

        var bad: [[UInt8]] = (0..<good.count).map { Array(good.prefix($0)) }
        bad.append(good + [0])
        var rtcStatus = good
        rtcStatus[1] = 0x04 // RTC_STS: never set by this hardware
        bad.append(rtcStatus)
        var reservedEnable = good
        reservedEnable[2] = 0x02
        bad.append(reservedEnable)
        var sleepEnable = good
        sleepEnable[5] = 0x20 // SLP_EN is never stored
        bad.append(sleepEnable)
        for blob in bad {
            #expect(throws: (any Error).self, "\(blob.count) bytes") { try pm.load(blob) }
        }
        #expect(throws: (any Error).self) { try pm.load(good, version: 2) }
        #expect(try pm.save() == before)
        #expect(good.count == 18)

        // SCI_EN clear cannot be loaded where no SMI command could ever set it.
        let acpiOnly = try makePM(["smi_cmd_port": .int(0)])
        var legacy = good
        legacy[4] = 0
        #expect(throws: (any Error).self) { try acpiOnly.load(legacy) }
    }

    @Test("reset clears the registers and is idempotent; the PM timer keeps counting")
    func resetIsIdempotent() throws {
        let fresh = try makePM()
        let pm = try makePM()
        pm.enableACPI()
        pm.reg16(pm1Enable, tmrEn)
        pm.reg16(gpe0Enable, 0x0003)
        pm.advance(nanoseconds: 3_000_000_000)
        #expect(pm.sciLevel)
        let before = pm.timer
        try pm.reset()
        #expect(!pm.sciLevel)
        #expect(pm.timer == before)
        #expect(pm.host.armedTimers.isEmpty)
        var expected = try fresh.save()
        let state = try pm.save()
        // Equal to a fresh device's registers; only the timer count differs.
        expected.replaceSubrange(10..<18, with: state[10..<18])
        #expect(state == expected)
        pm.host.clearIRQEvents()
        try pm.reset()
        #expect(try pm.save() == state)
        #expect(pm.host.irqEvents.isEmpty)
    }

    @Test("creation errors: overlapping blocks, blocks past 0xffff, an unopenable power button")
    func creationErrors() {
        #expect(throws: (any Error).self) { try makePM(["pm_tmr": .int(0x602)]) }
        #expect(throws: (any Error).self) { try makePM(["gpe0": .int(0xFFFE)]) }
        #expect(throws: (any Error).self) { try makePM(["smi_cmd_port": .int(0x604)]) }
        let path = "/nonexistent-veneer-dir/button"
        let error = #expect(throws: (any Error).self) { try makePM(["power_button": .string(path)]) }
        #expect((error.map { "\($0)" } ?? "").contains(path))
    }

    @Test("the harness conformance suite passes", arguments: [[:], ["smi_cmd_port": "0", "s5_slp_typ": "0"]] as [[String: String]])
    func conformance(parameters: [String: String]) {
        let report = ConformanceSuite(plugin: "acpi-pm", parameters: parameters).run()
        #expect(report.allPassed, "\(report.checks.map(\.line).joined(separator: "\n"))")
    }
}
