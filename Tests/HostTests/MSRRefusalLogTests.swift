import Synchronization
import Testing
@testable import VeneerHost

/// Refused MSR accesses: one debug line per MSR and direction, at most 64, then one closing line.
@Suite struct MSRRefusalLogTests {
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
    }

    @Test func firstOfEachThenALimit() {
        let lines = Lines()
        let log = MSRRefusalLog(enabled: true) { line in lines.lines.withLock { $0.append(line) } }
        log.refused(vp: 0, msr: 0x4B56_4D00, write: nil)
        log.refused(vp: 1, msr: 0x4B56_4D00, write: nil)
        log.refused(vp: 0, msr: 0x4B56_4D00, write: 5)
        #expect(lines.all == ["VP 0: rdmsr 0x4b564d00 refused (#GP)", "VP 0: wrmsr 0x4b564d00 <- 0x5 refused (#GP)"])
        for msr: UInt32 in 0..<1000 { log.refused(vp: 0, msr: msr, write: nil) }
        #expect(lines.all.count == MSRRefusalLog.limit + 1)
        #expect(lines.all.last == "further refused MSR accesses are not logged")
    }

    @Test func nothingBelowDebug() {
        let lines = Lines()
        let log = MSRRefusalLog(enabled: false) { line in lines.lines.withLock { $0.append(line) } }
        log.refused(vp: 0, msr: 0x11, write: nil)
        #expect(lines.all.isEmpty)
    }
}
