import Foundation
import Testing
import VeneerHost

/// Faults under veneerd: a worker killed (Failed, restart policy), veneerd killed (its VMs go on,
/// a new veneerd adopts them).
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"), .serialized)
struct CtlFaultTests {
    @Test func aKilledWorkerFailsItsVMAndOnFailureRestartsIt() throws {
        let veneerd = try VeneerdUnderTest()
        defer { veneerd.tearDown() }
        let events = try InteractiveProcess(VeneerProcess.executable, ["ctl", "events", "--json", "--socket", veneerd.socket])
        defer { events.terminate() }

        try veneerd.define(try CounterGuest.config(name: "stays-failed"))
        try veneerd.define(try CounterGuest.config(name: "comes-back"), extra: ["--restart", "on-failure", "--restart-backoff-ms", "200"])
        for name in ["stays-failed", "comes-back"] {
            #expect(try veneerd.ctl(["start", name]).status == 0)
            try veneerd.waitForState(name, "Running")
        }
        let victim = try #require(try veneerd.details("stays-failed").pid)
        let restartable = try #require(try veneerd.details("comes-back").pid)
        kill(victim, SIGKILL)
        kill(restartable, SIGKILL)

        // restart = never: Failed, and info says how the worker ended.
        try veneerd.waitForState("stays-failed", "Failed")
        let failed = try veneerd.details("stays-failed")
        let exit = try #require(failed.lastExit, "info names the dead worker's exit")
        #expect((exit["status"] as? NSNumber)?.int32Value != 0, "\(exit)")
        let text = try veneerd.ctl(["info", "stays-failed"])
        #expect(text.stdout.contains("last exit:") && text.stdout.contains("status"), "\(text.stdout)")
        #expect(failed.restarts == 0)

        // on-failure: a new worker, after a Failed state the event stream recorded.
        try waitUntil("comes-back runs again in a new worker", timeout: 120) {
            let vm = try veneerd.details("comes-back")
            return vm.state == "Running" && vm.pid != nil && vm.pid != restartable
        }
        #expect(try veneerd.details("comes-back").restarts >= 1)
        try waitUntil("the Failed event of comes-back", timeout: 30) {
            events.stdout.split(separator: "\n").contains { $0.contains("\"comes-back\"") && $0.contains("\"Failed\"") }
        }

        // veneerd kept serving throughout, and the failed VM can be started again.
        #expect(try veneerd.ctl(["list"]).status == 0)
        #expect(try veneerd.ctl(["start", "stays-failed"]).status == 0)
        try veneerd.waitForState("stays-failed", "Running")
    }

    @Test func aNewVeneerdAdoptsRunningVMsUndisturbed() throws {
        let veneerd = try VeneerdUnderTest()
        defer { veneerd.tearDown() }
        let names = (1...5).map { "adopt\($0)" }
        for name in names {
            try veneerd.define(try CounterGuest.config(name: name, memory: "16M", vcpus: 1))
            #expect(try veneerd.ctl(["start", name]).status == 0)
        }
        var before: [String: (pid: Int32, count: Int, tick: Int)] = [:]
        for name in names {
            try veneerd.waitForState(name, "Running")
            let pid = try #require(try veneerd.details(name).pid)
            let seen = try CounterGuest.latestCount(veneerd, vm: name)
            before[name] = (pid, seen.count, seen.tick)
        }

        veneerd.signal(SIGKILL)
        // With no veneerd, the workers go on: alive, and their guests keep counting.
        usleep(500_000)
        for (name, seen) in before { #expect(kill(seen.pid, 0) == 0, "\(name)'s worker outlived veneerd") }

        try veneerd.start()
        for name in names {
            let vm = try veneerd.details(name)
            #expect(vm.state == "Running", "\(name): \(vm.state)")
            #expect(vm.pid == before[name]?.pid, "\(name) kept its worker")
            #expect(vm.restarts == 0)
            let after = try CounterGuest.latestCount(veneerd, vm: name)
            let earlier = try #require(before[name])
            #expect(after.count > earlier.count && after.tick > earlier.tick,
                    "\(name)'s guest counted on through the gap: \(earlier) then \(after)")
        }
        // And the adopted workers are still managed: stop reaches them.
        for name in names {
            #expect(try veneerd.ctl(["stop", name]).status == 0)
            let pid = try #require(before[name]).pid
            try waitUntil("\(name)'s worker exited", timeout: 60) { ProcessLiveness.isGone(pid) }
        }
    }
}
