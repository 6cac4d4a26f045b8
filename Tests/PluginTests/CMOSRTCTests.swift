import Foundation
import Testing
import VeneerHarness
import VeneerHost

// The MC146818A through its real .so, checked against the Motorola datasheet and the PC's use of
// it. Register numbers and bits are spelled as numbers on purpose: they come from the datasheet.
//
// A: UIP DV2 DV1 DV0 RS3-RS0. B: SET PIE AIE UIE SQWE DM(1 = binary) 24/12 DSE.
// C: IRQF PF AF UF 0 0 0 0. D: VRT.
private let second: UInt64 = 1_000_000_000
private let leapEve = "2020-02-29T23:59:58"

private func makeRTC(
    start: String = leapEve, nvram: String = "", irq: Int64 = 8
) throws -> PluginHarness {
    try PluginHarness(
        plugin: "cmos-rtc", parameters: ["start": .string(start), "nvram": .string(nvram), "irq": .int(irq)])
}

extension PluginHarness {
    fileprivate func cmos(_ index: UInt8) -> UInt8 {
        write(port: 0x70, UInt64(index))
        return UInt8(truncatingIfNeeded: read(port: 0x71))
    }

    fileprivate func cmos(_ index: UInt8, _ value: UInt8) {
        write(port: 0x70, UInt64(index))
        write(port: 0x71, UInt64(value))
    }

    fileprivate var irq8: Bool { host.irqLevels[8] ?? false }

    /// Seconds, minutes, hours, weekday, day, month, year, century.
    fileprivate var clock: [UInt8] { [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32].map { cmos($0) } }

    /// Steps the clock in `step`s for `duration`, reading C whenever IRQ 8 is up, as an interrupt
    /// handler would; returns the C values read.
    fileprivate func serviceInterrupts(for duration: UInt64, step: UInt64) -> [UInt8] {
        var reads: [UInt8] = []
        var elapsed: UInt64 = 0
        while elapsed < duration {
            advance(nanoseconds: step)
            elapsed += step
            if irq8 { reads.append(cmos(0x0C)) }
        }
        return reads
    }

    fileprivate var assertions: [UInt64] { host.irqEvents.filter { $0.line == 8 && $0.level }.map(\.time) }
}

private func temporaryPath(_ tag: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("veneer-cmos-\(tag)-\(UUID().uuidString)").path
}

@Suite("cmos-rtc")
struct CMOSRTCTests {
    @Test("ports 0x70-0x71, power-on A, B, C, D, and a write-only index port")
    func powerOn() throws {
        let rtc = try makeRTC()
        #expect(rtc.host.regions.map { [$0.base, $0.length] } == [[0x70, 2]])
        #expect(rtc.cmos(0x0A) == 0x26)
        #expect(rtc.cmos(0x0B) == 0x02)
        #expect(rtc.cmos(0x0C) == 0x00)
        #expect(rtc.cmos(0x0D) == 0x80)
        #expect(rtc.read(port: 0x70) == 0xFF)
        #expect(rtc.cmos(0x0D, 0x00) == ())
        #expect(rtc.cmos(0x0D) == 0x80) // read-only
        #expect(rtc.host.irqEvents.isEmpty)
    }

    @Test("the start time in BCD and binary, 24-hour and 12-hour")
    func formats() throws {
        let rtc = try makeRTC()
        // 2020-02-29 was a Saturday: weekday 7 (Sunday = 1).
        #expect(rtc.clock == [0x58, 0x59, 0x23, 0x07, 0x29, 0x02, 0x20, 0x20])
        rtc.cmos(0x0B, 0x06) // binary, 24-hour
        #expect(rtc.clock == [58, 59, 23, 7, 29, 2, 20, 20])
        rtc.cmos(0x0B, 0x00) // BCD, 12-hour: 11 PM
        #expect(rtc.cmos(0x04) == 0x91)
        rtc.cmos(0x0B, 0x04) // binary, 12-hour
        #expect(rtc.cmos(0x04) == 0x8B)
    }

    @Test("12-hour mode: midnight is 12 AM, noon is 12 PM", arguments: [
        ("2021-06-15T00:30:00", UInt8(0x12)), ("2021-06-15T12:30:00", 0x92), ("2021-06-15T01:00:00", 0x01),
        ("2021-06-15T13:00:00", 0x81),
    ])
    func twelveHour(start: String, hours: UInt8) throws {
        let rtc = try makeRTC(start: start)
        rtc.cmos(0x0B, 0x00)
        #expect(rtc.cmos(0x04) == hours)
    }

    struct Rollover: Sendable, CustomStringConvertible {
        var start: String
        var seconds: UInt64
        var expected: [UInt8]
        var description: String { "\(start) + \(seconds) s" }
    }

    static let rollovers: [Rollover] = [
        Rollover(start: leapEve, seconds: 2, expected: [0x00, 0x00, 0x00, 0x01, 0x01, 0x03, 0x20, 0x20]), // → Sun Mar 1
        Rollover(start: "2021-02-28T23:59:59", seconds: 1, expected: [0x00, 0x00, 0x00, 0x02, 0x01, 0x03, 0x21, 0x20]),
        Rollover(start: "2000-02-28T23:59:59", seconds: 1, expected: [0x00, 0x00, 0x00, 0x03, 0x29, 0x02, 0x00, 0x20]),
        Rollover(start: "2100-02-28T23:59:59", seconds: 1, expected: [0x00, 0x00, 0x00, 0x02, 0x01, 0x03, 0x00, 0x21]),
        Rollover(start: "1999-12-31T23:59:59", seconds: 1, expected: [0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20]),
        Rollover(start: "2021-06-15T12:59:59", seconds: 1, expected: [0x00, 0x00, 0x13, 0x03, 0x15, 0x06, 0x21, 0x20]),
        Rollover(start: "2021-06-15T12:34:59", seconds: 1, expected: [0x00, 0x35, 0x12, 0x03, 0x15, 0x06, 0x21, 0x20]),
        Rollover(start: "2021-04-30T23:59:59", seconds: 1, expected: [0x00, 0x00, 0x00, 0x07, 0x01, 0x05, 0x21, 0x20]),
        Rollover(start: "2020-02-29T00:00:00", seconds: 366 * 86_400, expected: [0x00, 0x00, 0x00, 0x02, 0x01, 0x03, 0x21, 0x20]),
        Rollover(start: "9999-12-31T23:59:59", seconds: 1, expected: [0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x00]),
    ]

    @Test("time advances across minute, hour, day, month, year, century and leap days (2000 leap, 2100 not)",
          arguments: rollovers)
    func advances(_ case: Rollover) throws {
        let rtc = try makeRTC(start: `case`.start)
        rtc.advance(nanoseconds: `case`.seconds * second - 1)
        #expect(rtc.clock != `case`.expected)
        rtc.advance(nanoseconds: 1)
        #expect(rtc.clock == `case`.expected)
    }

    @Test("the host start reads the host's UTC wall clock")
    func hostStart() throws {
        let before = time(nil)
        let rtc = try makeRTC(start: "host")
        let after = time(nil)
        rtc.cmos(0x0B, 0x06)
        let c = rtc.clock.map { Int($0) }
        var parts = DateComponents()
        (parts.year, parts.month, parts.day, parts.hour, parts.minute, parts.second) =
            (c[7] * 100 + c[6], c[5], c[4], c[2], c[1], c[0])
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC") ?? utc.timeZone
        let shown = try #require(utc.date(from: parts)).timeIntervalSince1970
        #expect(Double(before) - 1 <= shown && shown <= Double(after) + 1)
    }

    @Test("bad start values are creation errors")
    func badStart() {
        for start in ["now", "2021-02-29T00:00:00", "2021-13-01T00:00:00", "2021-01-01 00:00:00", "2021-01-01T24:00:00", ""] {
            let error = #expect(throws: (any Error).self, "\(start)") { try makeRTC(start: start) }
            #expect((error.map { "\($0)" } ?? "").contains("start '\(start)'"))
        }
        #expect(throws: Never.self) { try makeRTC(start: "2021-01-01T00:00:00Z") }
    }

    @Test("SET freezes the clock; the written time runs once SET clears, on the divider's phase")
    func setBit() throws {
        let rtc = try makeRTC()
        rtc.advance(nanoseconds: 300_000_000)
        rtc.cmos(0x0B, 0x82)
        let frozen = rtc.clock
        rtc.advance(nanoseconds: 5 * second)
        #expect(rtc.clock == frozen)
        for (index, value) in [(UInt8(0x00), UInt8(0x30)), (0x02, 0x20), (0x04, 0x10), (0x06, 0x03), (0x07, 0x31),
                               (0x08, 0x12), (0x09, 0x99), (0x32, 0x19)] {
            rtc.cmos(index, value)
        }
        let written: [UInt8] = [0x30, 0x20, 0x10, 0x03, 0x31, 0x12, 0x99, 0x19]
        rtc.advance(nanoseconds: 10 * second)
        #expect(rtc.clock == written)
        #expect(rtc.cmos(0x0A) & 0x80 == 0) // no update in progress while SET
        rtc.cmos(0x0B, 0x02)
        // SET does not reset the divider: the next update comes at its next second boundary.
        rtc.advance(nanoseconds: 690_000_000)
        #expect(rtc.clock == written)
        rtc.advance(nanoseconds: 20_000_000)
        #expect(rtc.clock == [0x31, 0x20, 0x10, 0x03, 0x31, 0x12, 0x99, 0x19])
        // The written weekday carries on at midnight; New Year's Eve 1999 runs into 2000.
        rtc.cmos(0x0B, 0x82)
        rtc.cmos(0x04, 0x23)
        rtc.cmos(0x02, 0x59)
        rtc.cmos(0x00, 0x59)
        rtc.cmos(0x0B, 0x02)
        rtc.advance(nanoseconds: second)
        #expect(rtc.clock == [0x00, 0x00, 0x00, 0x04, 0x01, 0x01, 0x00, 0x20])
    }

    @Test("SET clears UIE; writes while running count on from the written value")
    func setClearsUIEAndLiveWrites() throws {
        let rtc = try makeRTC(start: "2021-06-15T12:00:00")
        rtc.cmos(0x0B, 0x92)
        #expect(rtc.cmos(0x0B) == 0x82)
        rtc.cmos(0x0B, 0x02)
        rtc.advance(nanoseconds: 400_000_000)
        rtc.cmos(0x02, 0x45)
        #expect(rtc.cmos(0x02) == 0x45)
        rtc.advance(nanoseconds: 600_000_000)
        #expect(rtc.clock.prefix(3) == [0x01, 0x45, 0x12])
    }

    @Test("a divider reset halts the clock; the first update comes 500 ms after it ends")
    func dividerReset() throws {
        let rtc = try makeRTC()
        rtc.cmos(0x0A, 0x76)
        let held = rtc.clock
        rtc.advance(nanoseconds: 3 * second)
        #expect(rtc.clock == held)
        rtc.advance(nanoseconds: 123_456_789)
        rtc.cmos(0x0A, 0x26)
        rtc.advance(nanoseconds: 499_999_999)
        #expect(rtc.clock == held)
        rtc.advance(nanoseconds: 1)
        #expect(rtc.cmos(0x00) == 0x59)
    }

    @Test("UIP is set for the last 244 µs before each update")
    func updateInProgress() throws {
        let rtc = try makeRTC()
        rtc.advance(nanoseconds: second - 244_001)
        #expect(rtc.cmos(0x0A) == 0x26)
        rtc.advance(nanoseconds: 1)
        #expect(rtc.cmos(0x0A) == 0xA6)
        #expect(rtc.cmos(0x00) == 0x58) // the update has not happened yet
        rtc.advance(nanoseconds: 243_999)
        #expect(rtc.cmos(0x0A) == 0xA6)
        rtc.advance(nanoseconds: 1)
        #expect(rtc.cmos(0x0A) == 0x26)
        #expect(rtc.cmos(0x00) == 0x59)
        rtc.cmos(0x0A, 0xA6) // UIP is read-only
        #expect(rtc.cmos(0x0A) == 0x26)
    }

    @Test("periodic interrupt at rate 6: 1024 per second when C is read each time")
    func periodicRate6() throws {
        let rtc = try makeRTC()
        rtc.cmos(0x0B, 0x42)
        let reads = rtc.serviceInterrupts(for: second, step: 100_000)
        #expect((1023...1025).contains(reads.count))
        #expect(reads.allSatisfy { $0 & 0xE0 == 0xC0 }) // IRQF and PF, no alarm
        #expect(!rtc.irq8)
        #expect(rtc.cmos(0x0C) == 0x00)
    }

    @Test("periodic rates 1-15 follow the 32.768 kHz divider; rate 0 is off", arguments: 0...15)
    func periodicRates(rate: Int) throws {
        let rtc = try makeRTC()
        rtc.cmos(0x0A, 0x20 | UInt8(rate))
        rtc.cmos(0x0B, 0x42)
        let ticks: UInt64 = rate == 0 ? 0 : rate <= 2 ? 1 << (rate + 6) : 1 << (rate - 1)
        let period = ticks * second / 32_768
        guard rate != 0 else {
            rtc.advance(nanoseconds: 2 * second)
            #expect(rtc.host.irqEvents.isEmpty)
            #expect(rtc.cmos(0x0C) & 0x40 == 0)
            return
        }
        _ = rtc.serviceInterrupts(for: 4 * period, step: period / 8)
        let times = rtc.assertions
        #expect(times.count == 4)
        for (a, b) in zip(times, times.dropFirst()) { #expect(b - a >= period && b - a <= period + 1) }
    }

    @Test("PF is set without PIE, but IRQ 8 stays low")
    func flagsWithoutEnables() throws {
        let rtc = try makeRTC(start: "2021-06-15T12:00:00") // the power-on alarm (00:00:00) stays away
        rtc.advance(nanoseconds: 2 * second)
        #expect(rtc.cmos(0x0C) == 0x50) // PF and UF, no IRQF
        #expect(rtc.host.irqEvents.isEmpty)
        // Enabling PIE while PF is pending raises IRQF at once.
        rtc.advance(nanoseconds: 10_000_000)
        rtc.cmos(0x0B, 0x42)
        #expect(rtc.irq8)
        #expect(rtc.cmos(0x0C) == 0xC0)
        #expect(!rtc.irq8)
    }

    @Test("alarm fires at the matching second; AF is set, C clears it and lowers IRQ 8")
    func alarm() throws {
        let rtc = try makeRTC()
        rtc.cmos(0x01, 0x05)
        rtc.cmos(0x03, 0x00)
        rtc.cmos(0x05, 0x00)
        rtc.cmos(0x0B, 0x22)
        rtc.advance(nanoseconds: 7 * second - 1)
        #expect(!rtc.irq8)
        rtc.advance(nanoseconds: 1)
        #expect(rtc.irq8)
        #expect(rtc.assertions == [second + 7 * second])
        #expect(rtc.clock.prefix(3) == [0x05, 0x00, 0x00])
        #expect(rtc.cmos(0x0C) == 0xF0) // IRQF, AF, and PF and UF, which are set whatever the enables
        #expect(!rtc.irq8)
        #expect(rtc.cmos(0x0C) == 0x00)
        rtc.advance(nanoseconds: 3600 * second)
        #expect(!rtc.irq8) // the next match is a day away
    }

    @Test("alarm don't-care bytes: every minute at :30, and every second")
    func alarmDontCare() throws {
        let rtc = try makeRTC()
        rtc.cmos(0x01, 0x30)
        rtc.cmos(0x03, 0xFF)
        rtc.cmos(0x05, 0xC0)
        rtc.cmos(0x0B, 0x22)
        let reads = rtc.serviceInterrupts(for: 3 * 60 * second, step: 250_000_000)
        #expect(reads.count == 3)
        for time in rtc.assertions { #expect((time - second) % (60 * second) == 32 * second) }

        rtc.host.clearIRQEvents()
        rtc.cmos(0x01, 0xC0)
        #expect(rtc.serviceInterrupts(for: 10 * second, step: 100_000_000).count == 10)

        // An alarm byte no time can show never matches.
        rtc.host.clearIRQEvents()
        rtc.cmos(0x01, 0x75)
        _ = rtc.cmos(0x0C)
        #expect(rtc.serviceInterrupts(for: 120 * second, step: second).isEmpty)
    }

    @Test("alarm in 12-hour binary mode matches the PM bit")
    func alarmTwelveHour() throws {
        let rtc = try makeRTC(start: "2021-06-15T12:59:58")
        rtc.cmos(0x0B, 0x04) // binary, 12-hour
        rtc.cmos(0x01, 0)
        rtc.cmos(0x03, 0)
        rtc.cmos(0x05, 0x81) // 1 PM
        rtc.cmos(0x0B, 0x24)
        rtc.advance(nanoseconds: 2 * second)
        #expect(rtc.irq8)
        #expect(rtc.cmos(0x04) == 0x81)
    }

    @Test("update-ended interrupt once per second")
    func updateEnded() throws {
        let rtc = try makeRTC(start: "2021-06-15T12:00:00")
        rtc.advance(nanoseconds: 300_000_000)
        rtc.cmos(0x0B, 0x12)
        let reads = rtc.serviceInterrupts(for: 5 * second, step: 50_000_000)
        #expect(reads == Array(repeating: 0xD0, count: 5)) // IRQF, UF, and PF from the 1024 Hz tap
        let times = rtc.assertions
        #expect(times == (1...5).map { second + UInt64($0) * second })
    }

    @Test("index port: 7 bits, bit 7 (NMI mask) ignored; a 16-bit write sets index then data")
    func indexPort() throws {
        let rtc = try makeRTC()
        rtc.cmos(0x7F, 0x5A)
        rtc.write(port: 0x70, 0xFF)
        #expect(rtc.read(port: 0x71) == 0x5A)
        rtc.write(port: 0x70, 0x8E)
        #expect(rtc.read(port: 0x71) == 0x00)
        rtc.write(port: 0x70, 0xA55E, size: 2)
        #expect(rtc.cmos(0x5E) == 0xA5)
        for i in UInt8(0x0E)...0x7F where i != 0x32 {
            rtc.cmos(i, i ^ 0xFF)
        }
        for i in UInt8(0x0E)...0x7F where i != 0x32 {
            #expect(rtc.cmos(i) == i ^ 0xFF)
        }
    }

    @Test("NVRAM persists in a file across two instances, written atomically")
    func nvramPersists() throws {
        let path = temporaryPath("nvram")
        defer { unlink(path) }
        do {
            let first = try makeRTC(nvram: path)
            #expect(!FileManager.default.fileExists(atPath: path))
            first.cmos(0x10, 0xAB)
            first.cmos(0x7F, 0xCD)
            first.cmos(0x00, 0x11) // the clock is not NVRAM
            first.runPostedWork()
            let image = try #require(FileManager.default.contents(atPath: path))
            #expect(image.count == 128)
            #expect(image[0x10] == 0xAB && image[0x7F] == 0xCD && image[0x00] == 0 && image[0x0B] == 0)
            #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
            // Written again at stop, without waiting for posted work.
            first.cmos(0x20, 0x42)
        }
        let second = try makeRTC(nvram: path)
        #expect(second.cmos(0x10) == 0xAB)
        #expect(second.cmos(0x7F) == 0xCD)
        #expect(second.cmos(0x20) == 0x42)
        #expect(second.cmos(0x0B) == 0x02)
        #expect(second.clock == [0x58, 0x59, 0x23, 0x07, 0x29, 0x02, 0x20, 0x20])
    }

    @Test("an NVRAM file of the wrong size, or in a missing directory, is a creation error naming it")
    func badNVRAMFile() throws {
        let path = temporaryPath("short")
        defer { unlink(path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 1, count: 57)))
        let error = #expect(throws: (any Error).self) { try makeRTC(nvram: path) }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(path))
        #expect(text.contains("57 bytes, expected exactly 128"))

        let missing = "/nonexistent-veneer-dir/cmos.bin"
        let error2 = #expect(throws: (any Error).self) { try makeRTC(nvram: missing) }
        #expect((error2.map { "\($0)" } ?? "").contains(missing))
    }

    @Test("an NVRAM path that is a FIFO or a directory is refused at once, never waited on")
    func nvramThatIsNotARegularFile() throws {
        let fifo = temporaryPath("fifo")
        defer { unlink(fifo) }
        #expect(mkfifo(fifo, 0o600) == 0)
        let error = #expect(throws: (any Error).self) { try makeRTC(nvram: fifo) }
        #expect((error.map { "\($0)" } ?? "").hasSuffix("nvram '\(fifo)': cannot open: it is a FIFO, not a regular file"))
        let directory = FileManager.default.temporaryDirectory.path
        let error2 = #expect(throws: (any Error).self) { try makeRTC(nvram: directory) }
        #expect((error2.map { "\($0)" } ?? "").contains("it is a directory, not a regular file"))
    }

    @Test("save → load into an instance with another clock reads and runs the same")
    func saveLoad() throws {
        let a = try makeRTC(nvram: "")
        a.advance(nanoseconds: 700_000_000)
        a.cmos(0x40, 0x99)
        a.cmos(0x01, 0xC0)
        a.cmos(0x03, 0xC0)
        a.cmos(0x05, 0xC0)
        a.cmos(0x0A, 0x2F) // 2 Hz
        a.cmos(0x0B, 0x26) // alarm enabled, binary
        a.advance(nanoseconds: 1_500_000_000) // an interrupt is pending
        #expect(a.irq8)
        a.write(port: 0x70, 0x85)
        let saved = try a.save()

        let b = try makeRTC(start: "1990-01-01T00:00:00")
        b.advance(nanoseconds: 12_345_678_901)
        try b.load(saved)
        #expect(b.irq8)
        #expect(try b.save() == saved)
        #expect(b.read(port: 0x71) == a.read(port: 0x71)) // the index survived
        #expect(b.clock == a.clock)
        #expect(b.cmos(0x40) == 0x99)
        #expect(b.cmos(0x0C) == a.cmos(0x0C))
        for _ in 0..<6 {
            a.advance(nanoseconds: 250_000_000)
            b.advance(nanoseconds: 250_000_000)
            #expect(b.clock == a.clock)
            #expect(b.cmos(0x0A) == a.cmos(0x0A))
            #expect(b.cmos(0x0C) == a.cmos(0x0C))
        }
        // A halted clock's registers travel as written.
        a.cmos(0x0B, 0x80)
        a.cmos(0x00, 0x7E)
        let halted = try a.save()
        try b.load(halted)
        #expect(b.cmos(0x00) == 0x7E)
        #expect(try b.save() == halted)
    }

    @Test("malformed state is rejected and leaves the device unchanged")
    func malformedState() throws {
        let rtc = try makeRTC()
        rtc.cmos(0x0B, 0x42)
        rtc.advance(nanoseconds: 10_000_000)
        let good = try rtc.save()
        #expect(good.count == 128 + 1 + 1 + 8 + 8 + 1)
        rtc.cmos(0x50, 0x01)
        let before = try rtc.save()

        // Layout v1: registers 0-127, index, NMI mask, phase (u64), time (i64), weekday offset (u8).
        func patched(_ offset: Int, _ bytes: [UInt8]) -> [UInt8] {
            var copy = good
            copy.replaceSubrange(offset..<offset + bytes.count, with: bytes)
            return copy
        }
        var bad: [[UInt8]] = (0..<good.count).map { Array(good.prefix($0)) }
        bad.append(good + [0])
        bad.append(patched(0x00, [0x59])) // seconds disagree with the saved time
        bad.append(patched(0x0A, [0xA6])) // UIP saved
        bad.append(patched(0x0B, [0x92])) // SET with UIE
        bad.append(patched(0x0C, [0x40])) // PF with PIE but no IRQF
        bad.append(patched(0x0D, [0x00])) // VRT clear
        bad.append(patched(128, [0x80])) // index with bit 7
        bad.append(patched(130, [0x00, 0xCA, 0x9A, 0x3B, 0, 0, 0, 0])) // phase of a whole second
        bad.append(patched(138, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])) // negative time
        bad.append(patched(146, [7])) // weekday offset
        for blob in bad {
            #expect(throws: (any Error).self, "\(blob.count) bytes") { try rtc.load(blob) }
        }
        #expect(throws: (any Error).self) { try rtc.load(good, version: 2) }
        #expect(try rtc.save() == before)
    }

    @Test("reset clears the enables and flags and lowers IRQ 8; the time and RAM stay; idempotent")
    func resetIsIdempotent() throws {
        let rtc = try makeRTC()
        rtc.cmos(0x30, 0x77)
        rtc.cmos(0x0B, 0x7A)
        rtc.advance(nanoseconds: 1_200_000_000)
        #expect(rtc.irq8)
        try rtc.reset()
        #expect(!rtc.irq8)
        #expect(rtc.cmos(0x0B) == 0x02)
        #expect(rtc.cmos(0x30) == 0x77)
        #expect(rtc.cmos(0x00) == 0x59)
        let once = try rtc.save()
        try rtc.reset()
        #expect(try rtc.save() == once)
        #expect(rtc.host.armedTimers.isEmpty)
    }

    @Test("the irq parameter moves the interrupt")
    func otherLine() throws {
        let rtc = try makeRTC(irq: 5)
        rtc.cmos(0x0B, 0x12)
        rtc.advance(nanoseconds: second)
        #expect(rtc.host.irqLevels == [5: true])
    }

    @Test("passes the conformance suite")
    func conformance() {
        let report = ConformanceSuite(plugin: "cmos-rtc", parameters: ["start": leapEve]).run()
        #expect(report.allPassed, "\(report.checks.map(\.line))")
    }
}
