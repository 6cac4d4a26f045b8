import Foundation
import Testing
import VeneerManagement
import WorkerControlProtocol

/// VMSupervisor with real `veneer run --control-dir` workers and a real state directory.
@Suite(.serialized, .enabled(if: SupervisorFixture.canRunWorkers,
                             "SKIPPED: needs /dev/kvm and a built veneer next to the test binary"))
struct VMSupervisorTests {
    @Test("define, start, pause, resume, stop and delete one VM; invalid transitions name the current state")
    func lifecycle() async throws {
        let fixture = try SupervisorFixture()
        defer { fixture.remove() }
        let supervisor = try await fixture.supervisor()
        let events = await supervisor.events()

        let defined = try await supervisor.define(fixture.spinDefinition("alpha"))
        #expect(defined.summary.state == .off)
        #expect(defined.summary.memoryBytes == 2 << 20)
        #expect(FileManager.default.fileExists(atPath: fixture.stateDirectory + "/vms/alpha/config.toml"))
        #expect(FileManager.default.fileExists(atPath: fixture.stateDirectory + "/vms/alpha/definition.json"))
        await #expect(throws: ManagementError.invalidTransition(name: "alpha", operation: "pause", state: .off)) {
            _ = try await supervisor.pause("alpha")
        }

        let started = try await supervisor.start("alpha")
        #expect([.starting, .running].contains(started.summary.state))
        let pid = try #require(started.summary.pid)
        let running = try await SupervisorFixture.waitFor(supervisor, "alpha", .running)
        #expect(running.worker?.name == "alpha")
        #expect(running.worker?.pid == pid)
        await #expect(throws: ManagementError.invalidTransition(name: "alpha", operation: "start", state: .running)) {
            _ = try await supervisor.start("alpha")
        }
        await #expect(throws: ManagementError.invalidTransition(name: "alpha", operation: "resume", state: .running)) {
            _ = try await supervisor.resume("alpha")
        }
        await #expect(throws: ManagementError.invalidTransition(name: "alpha", operation: "delete", state: .running)) {
            try await supervisor.delete("alpha")
        }

        #expect(try await supervisor.pause("alpha").summary.state == .paused)
        #expect(try await supervisor.resume("alpha").summary.state == .running)

        let stopped = try await supervisor.stop("alpha")
        #expect(stopped.summary.state == .off)
        #expect(stopped.summary.pid == nil)
        #expect(stopped.lastExit == nil)
        #expect(!SupervisorFixture.processExists(pid))

        try await supervisor.delete("alpha")
        await #expect(throws: ManagementError.notFound(name: "alpha")) { _ = try await supervisor.info("alpha") }
        #expect(!FileManager.default.fileExists(atPath: fixture.stateDirectory + "/vms/alpha"))

        // The event stream saw the whole story, in order.
        var seen: [VMState] = []
        for await event in events where event.name == "alpha" {
            seen.append(event.state)
            if event.reason == "deleted" { break }
        }
        #expect(seen.first == .off)
        #expect(seen.contains(.starting) && seen.contains(.running) && seen.contains(.paused) && seen.contains(.stopping))
        #expect(seen.firstIndex(of: .paused).map { i in seen[i...].contains(.running) } == true)
    }

    @Test("define refuses a bad config (as veneer check says), a name mismatch, a duplicate, a relative directory")
    func defineValidation() async throws {
        let fixture = try SupervisorFixture()
        defer { fixture.remove() }
        let supervisor = try await fixture.supervisor()

        var unknownKey = fixture.spinDefinition("bad")
        unknownKey.config += "\nturbo = true\n"
        do {
            _ = try await supervisor.define(unknownKey)
            Issue.record("a config with an unknown key was accepted")
        } catch {
            guard case .invalid(let field, let reason) = error else { throw error }
            #expect(field == "config")
            #expect(reason.contains("turbo"))
            #expect(!reason.contains("/staging/"))
        }

        // Syntax is fine, but `veneer check` loads the plugins: this one does not exist.
        var noPlugin = fixture.spinDefinition("noplugin")
        noPlugin.config += "\n[[device]]\nid = \"x\"\nplugin = \"no-such-plugin\"\n"
        do {
            _ = try await supervisor.define(noPlugin)
            Issue.record("a config naming a missing plugin was accepted")
        } catch {
            guard case .invalid(let field, let reason) = error else { throw error }
            #expect(field == "config")
            #expect(reason.contains("no-such-plugin"))
        }

        var mismatch = fixture.spinDefinition("one")
        mismatch.name = "two"
        do {
            _ = try await supervisor.define(mismatch)
            Issue.record("a definition whose name disagrees with its config was accepted")
        } catch {
            guard case .invalid(let field, _) = error else { throw error }
            #expect(field == "name")
        }

        var relative = fixture.spinDefinition("rel")
        relative.directory = "guests"
        do {
            _ = try await supervisor.define(relative)
            Issue.record("a relative directory was accepted")
        } catch {
            guard case .invalid(let field, _) = error else { throw error }
            #expect(field == "directory")
        }

        var badName = fixture.spinDefinition("x")
        badName.name = "../escape"
        await #expect(throws: ManagementError.self) { _ = try await supervisor.define(badName) }

        _ = try await supervisor.define(fixture.spinDefinition("dup"))
        await #expect(throws: ManagementError.exists(name: "dup")) { _ = try await supervisor.define(fixture.spinDefinition("dup")) }
        #expect(await supervisor.list().map(\.name) == ["dup"])
        // Nothing of the refused definitions was left behind.
        let entries = try FileManager.default.contentsOfDirectory(atPath: fixture.stateDirectory + "/vms")
        #expect(entries == ["dup"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.stateDirectory + "/staging").isEmpty)
    }

    @Test("SIGKILL of a worker: Failed with the exit status; on-failure restarts with doubling backoff; stop cancels it")
    func killedWorkerRestartsWithBackoff() async throws {
        let fixture = try SupervisorFixture()
        defer { fixture.remove() }
        let supervisor = try await fixture.supervisor()
        let policy = RestartPolicy(mode: .onFailure, initialBackoffMs: 300, maxBackoffMs: 600)
        _ = try await supervisor.define(fixture.spinDefinition("crashy", policy: policy))
        let events = await supervisor.events()
        _ = try await supervisor.start("crashy")

        var failedAt: [Int64] = []
        var restartedAt: [Int64] = []
        var pid = try #require(try await SupervisorFixture.waitFor(supervisor, "crashy", .running).summary.pid)
        var iterator = events.makeAsyncIterator()
        for round in 0..<3 {
            kill(pid, SIGKILL)
            // Follow the events: Failed (the kill), then Starting (the policy's restart).
            while let event = await iterator.next() {
                guard event.name == "crashy" else { continue }
                if event.state == .failed, failedAt.count == round {
                    failedAt.append(event.timeMs)
                    let details = try await supervisor.info("crashy")
                    let exit = try #require(details.lastExit)
                    #expect(exit.status == 128 + SIGKILL)
                    #expect(exit.message.contains("SIGKILL"))
                }
                if event.state == .starting, failedAt.count == round + 1 {
                    restartedAt.append(event.timeMs)
                    break
                }
            }
            pid = try #require(try await SupervisorFixture.waitFor(supervisor, "crashy", .running).summary.pid)
        }
        // Backoff 300, 600, then capped at 600: each restart waited at least that long.
        let gaps = zip(failedAt, restartedAt).map { $1 - $0 }
        #expect(gaps.count == 3)
        for (gap, minimum) in zip(gaps, [300, 600, 600]) { #expect(gap >= Int64(minimum), "gaps \(gaps)") }
        #expect(try await supervisor.info("crashy").restarts == 3)

        // Killed again, then stopped while the restart waits: no restart happens.
        kill(pid, SIGKILL)
        _ = try await SupervisorFixture.waitFor(supervisor, "crashy", .failed)
        _ = try await supervisor.stop("crashy")
        try await Task.sleep(for: .milliseconds(900))
        let after = try await supervisor.info("crashy")
        #expect(after.summary.state == .failed)
        #expect(after.restarts == 3)
        try await supervisor.delete("crashy")
    }

    @Test("policy never: a killed worker stays Failed; a new supervisor keeps that record")
    func neverPolicyAndFailedRecordSurvives() async throws {
        let fixture = try SupervisorFixture()
        defer { fixture.remove() }
        do {
            let supervisor = try await fixture.supervisor()
            _ = try await supervisor.define(fixture.spinDefinition("once"))
            _ = try await supervisor.start("once")
            let pid = try #require(try await SupervisorFixture.waitFor(supervisor, "once", .running).summary.pid)
            kill(pid, SIGKILL)
            let failed = try await SupervisorFixture.waitFor(supervisor, "once", .failed)
            #expect(failed.restarts == 0)
            #expect(failed.lastExit?.reason == "crash")
        }
        let second = try await fixture.supervisor(label: "second")
        let details = try await second.info("once")
        #expect(details.summary.state == .failed)
        #expect(details.lastExit?.status == 128 + SIGKILL)
        // A Failed VM starts again.
        _ = try await second.start("once")
        _ = try await SupervisorFixture.waitFor(second, "once", .running)
        _ = try await second.stop("once")
    }

    @Test("a second VMSupervisor on the same state directory re-attaches to running workers")
    func reattach() async throws {
        let fixture = try SupervisorFixture()
        defer { fixture.remove() }
        let first = try await fixture.supervisor(label: "first")
        var pids: [String: Int32] = [:]
        for name in ["r1", "r2", "r3"] {
            _ = try await first.define(fixture.spinDefinition(name))
            _ = try await first.start(name)
            pids[name] = try await SupervisorFixture.waitFor(first, name, .running).summary.pid
        }
        _ = try await first.pause("r2")

        let second = try await fixture.supervisor(label: "second")
        let listed = await second.list()
        #expect(listed.map(\.name) == ["r1", "r2", "r3"])
        for summary in listed {
            #expect(summary.pid == pids[summary.name])
            #expect(summary.state == (summary.name == "r2" ? .paused : .running))
        }
        // The new supervisor drives them: resume, stop; the first one sees the workers end too.
        #expect(try await second.resume("r2").summary.state == .running)
        for name in ["r1", "r2", "r3"] {
            #expect(try await second.stop(name).summary.state == .off)
            let pid = try #require(pids[name])
            #expect(!SupervisorFixture.processExists(pid))
        }
        _ = try await SupervisorFixture.waitFor(first, "r1", .off)
    }

    @Test("20 VMs started at once all reach Running and stop, leaving no process or descriptor behind")
    func manyConcurrently() async throws {
        let fixture = try SupervisorFixture()
        defer { fixture.remove() }
        let supervisor = try await fixture.supervisor()
        // Warm up the shared machinery (event loop, exit watcher) before counting descriptors.
        _ = try await supervisor.define(fixture.spinDefinition("warm"))
        _ = try await supervisor.start("warm")
        _ = try await SupervisorFixture.waitFor(supervisor, "warm", .running)
        _ = try await supervisor.stop("warm")
        try await supervisor.delete("warm")
        let descriptorsBefore = SupervisorFixture.openDescriptors()

        let names = (0..<20).map { String(format: "vm%02d", $0) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for name in names {
                group.addTask {
                    _ = try await supervisor.define(fixture.spinDefinition(name))
                    _ = try await supervisor.start(name)
                }
            }
            try await group.waitForAll()
        }
        var pids: [Int32] = []
        for name in names {
            let details = try await SupervisorFixture.waitFor(supervisor, name, .running, seconds: 120)
            pids.append(try #require(details.summary.pid))
        }
        #expect(Set(pids).count == 20)
        #expect(await supervisor.metrics().count == 20)
        try await withThrowingTaskGroup(of: VMState.self) { group in
            for name in names { group.addTask { try await supervisor.stop(name).summary.state } }
            for try await state in group { #expect(state == .off) }
        }
        for pid in pids { #expect(!SupervisorFixture.processExists(pid), "worker \(pid) still exists (unreaped?)") }
        for name in names { try await supervisor.delete(name) }
        // Channel closes finish on the event loop shortly after: wait (bounded) for the count to settle.
        var descriptorsAfter = SupervisorFixture.openDescriptors()
        for _ in 0..<250 where descriptorsAfter > descriptorsBefore {
            try await Task.sleep(for: .milliseconds(20))
            descriptorsAfter = SupervisorFixture.openDescriptors()
        }
        #expect(descriptorsAfter <= descriptorsBefore, "descriptors before \(descriptorsBefore), after \(descriptorsAfter)")
    }
}
