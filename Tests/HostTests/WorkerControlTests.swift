import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import VeneerHost

/// The worker's control-side building blocks that need no VM: the console ring, request framing,
/// the pause gate and the exit counters.
struct WorkerControlTests {
    @Test func consoleRingKeepsTheLastBytes() {
        var ring = ConsoleRing(capacity: 8)
        #expect(ring.contents.isEmpty)
        ring.append(Array("abc".utf8))
        #expect(ring.contents == Array("abc".utf8))
        ring.append(Array("defghij".utf8))
        #expect(ring.contents == Array("cdefghij".utf8))
        ring.append(Array("0123456789XY".utf8))
        #expect(ring.contents == Array("456789XY".utf8), "a write larger than the ring keeps its tail")
        #expect(ring.count == 8)
        #expect(ConsoleRing().capacity == 64 << 10)
    }

    @Test func linesAreSplitAndBoundedBeforeBuffering() {
        var reader = ControlLineReader(limit: 10)
        #expect(reader.feed(Array("{\"a\":1}\n{\"b\"".utf8)) == [.line(Array("{\"a\":1}".utf8))])
        #expect(reader.feed(Array(":2}\r\n\n".utf8)) == [.line(Array("{\"b\":2}".utf8))], "CRLF and empty lines")
        #expect(reader.feed(Array("0123456789".utf8)).isEmpty, "exactly the limit is still a line")
        #expect(reader.feed(Array("\n".utf8)) == [.line(Array("0123456789".utf8))])
        #expect(reader.feed(Array("0123456789A".utf8)) == [.tooLong])
        #expect(reader.feed(Array("more\n".utf8)).isEmpty, "nothing is framed after an oversized line")
    }

    @Test func requestBodiesMustBeObjectsWithAnOp() {
        #expect(WorkerSession.isRequestObject(#"{"op":"power-button"}"#))
        #expect(WorkerSession.isRequestObject(#"  {"op":"get","key":"k"}"#))
        #expect(!WorkerSession.isRequestObject(#"{"key":"k"}"#))
        #expect(!WorkerSession.isRequestObject(#"{"op":1}"#))
        #expect(!WorkerSession.isRequestObject("[1]"))
        #expect(!WorkerSession.isRequestObject(""))
    }

    @Test func exitReasonsForTheExitRecord() {
        #expect(Worker.reason(.powerOff) == "powerOff")
        #expect(Worker.reason(.guestExit(3)) == "guestExit")
        #expect(Worker.reason(.stopped) == "stopped")
        #expect(Worker.reason(.interrupted(15)) == "stopped")
        #expect(Worker.reason(.interrupted(2)) == "signal")
        #expect(Worker.reason(.fault("x")) == "fault")
        #expect(Worker.reason(.deviceError("x")) == "deviceError")
    }

    @Test func theGateHoldsThreadsUntilOpenedOrStopped() throws {
        let gate = try VCPUGate()
        let stop = try StopController()
        let passes = Atomic<Int>(0)
        gate.close()
        let threads = try (0..<2).map { i in
            try NativeThread(name: "gate-test\(i)") {
                while !stop.isStopping {
                    if gate.isClosed { gate.park(unless: stop); continue }
                    passes.add(1, ordering: .relaxed)
                    usleep(1_000)
                }
            }
        }
        #expect(gate.waitUntilParked(2, stop: stop, timeoutNs: 10_000_000_000))
        let held = passes.load(ordering: .relaxed)
        usleep(50_000)
        #expect(passes.load(ordering: .relaxed) == held && held == 0, "no pass while closed")
        gate.open()
        while passes.load(ordering: .relaxed) < 4 { usleep(1_000) }
        #expect(gate.parked == 0)
        gate.close()
        #expect(gate.waitUntilParked(2, stop: stop, timeoutNs: 10_000_000_000))
        // A stop lets parked threads go (the machine registers `release` as a kicker).
        stop.request(.stopped)
        gate.release()
        for t in threads { t.join() }
        #expect(gate.parked == 0)
    }

    @Test func exitCountersNameEveryReason() {
        let counters = ExitCounters()
        counters.record(.io)
        counters.record(.io)
        counters.record(.hlt)
        let snapshot = counters.snapshot()
        #expect(snapshot["io"] == 2 && snapshot["hlt"] == 1 && snapshot["mmio"] == 0)
        #expect(snapshot.count == ExitReason.allCases.count)
    }
}
