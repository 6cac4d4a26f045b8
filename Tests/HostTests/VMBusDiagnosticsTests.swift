import Testing
@testable import VeneerHost

/// The VMBus host's log throttle. Regression: a 1,000,000-step fuzz run (seed 1796609853295)
/// logged 956 lines where the throttle meant to allow a few hundred: one line per 1024 events is
/// still a flood from a guest that can post a million bad messages a second.
@Suite struct VMBusDiagnosticsTests {
    @Test func aMillionEventsOfOneKindLogFewLines() {
        let log = LogRecorder()
        let diagnostics = VMBusDiagnostics(sink: log)
        for _ in 0..<1_000_000 { diagnostics.report(.droppedMessage, .warning, "dropped") }
        #expect(diagnostics.count(.droppedMessage) == 1_000_000)
        // 64 lines, then 128, 256, ..., 524288: 13 more, each with the count so far.
        #expect(log.all.count == 64 + 13)
        #expect(log.all.last == "dropped (524288 so far)")
        #expect(log.all.prefix(64).allSatisfy { $0 == "dropped" })
    }

    @Test func kindsAreThrottledSeparately() {
        let log = LogRecorder()
        let diagnostics = VMBusDiagnostics(sink: log)
        for _ in 0..<100 { diagnostics.report(.ringFault, .warning, "ring") }
        diagnostics.report(.connection, .info, "connect")
        #expect(log.all.filter { $0 == "connect" }.count == 1)
        #expect(log.all.filter { $0.hasPrefix("ring") }.count == 64)
    }
}
