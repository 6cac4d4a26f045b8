import Foundation
import Synchronization
import Testing
import VeneerManagement
import WorkerControlProtocol

/// VMSupervisor with the counting guest (examples/counter.toml): graceful shutdown through the
/// ACPI power button, a guest power-off under the `always` policy, the console and device requests.
@Suite(.serialized, .enabled(if: SupervisorFixture.canRunWorkers,
                             "SKIPPED: needs /dev/kvm and a built veneer next to the test binary"))
struct CounterGuestTests {
    private static let built = Mutex(false)

    /// The counting guest's definition, from the example config and its directory (relative paths).
    static func counterDefinition(policy: RestartPolicy? = nil) throws -> VMDefinition {
        try built.withLock { done in
            guard !done else { return }
            let make = Process()
            make.executableURL = URL(fileURLWithPath: "/usr/bin/make")
            make.arguments = ["-s", "-C", SupervisorFixture.repoRoot + "/examples/guests"]
            try make.run()
            make.waitUntilExit()
            guard make.terminationStatus == 0 else { throw FixtureError("make -C examples/guests failed") }
            done = true
        }
        let config = try String(contentsOfFile: SupervisorFixture.repoRoot + "/examples/counter.toml", encoding: .utf8)
        return VMDefinition(config: config, directory: SupervisorFixture.repoRoot + "/examples", restartPolicy: policy)
    }

    @Test("shutdown presses the power button; the guest powers off; Off by request, not restarted under always")
    func gracefulShutdown() async throws {
        let fixture = try SupervisorFixture()
        defer { fixture.remove() }
        let supervisor = try await fixture.supervisor()
        _ = try await supervisor.define(try Self.counterDefinition(policy: RestartPolicy(mode: .always, initialBackoffMs: 100, maxBackoffMs: 100)))
        _ = try await supervisor.start("counter")
        let running = try await SupervisorFixture.waitFor(supervisor, "counter", .running)
        #expect(running.worker?.devices.contains { $0.plugin == "acpi-pm" } == true)
        #expect(running.summary.vcpus == 2)
        await #expect(throws: ManagementError.noDevice(name: "counter", device: "nope")) {
            _ = try await supervisor.deviceRequest("counter", device: "nope", body: #"{"op":"x"}"#)
        }
        _ = try await supervisor.shutdown("counter", force: false, reason: "test")
        let off = try await SupervisorFixture.waitFor(supervisor, "counter", .off)
        #expect(off.lastExit == nil)
        try await Task.sleep(for: .milliseconds(500))
        let later = try await supervisor.info("counter")
        #expect(later.summary.state == .off)
        #expect(later.restarts == 0)
    }

    @Test("a guest power-off not asked for by the API is Off with its record, and `always` restarts it")
    func guestPowerOffUnderAlways() async throws {
        let fixture = try SupervisorFixture()
        defer { fixture.remove() }
        let supervisor = try await fixture.supervisor()
        _ = try await supervisor.define(try Self.counterDefinition(policy: RestartPolicy(mode: .always, initialBackoffMs: 100, maxBackoffMs: 100)))
        let events = await supervisor.events()
        _ = try await supervisor.start("counter")
        let first = try #require(try await SupervisorFixture.waitFor(supervisor, "counter", .running).summary.pid)
        // The power button pressed as a device request: to veneerd this is the guest's own power-off.
        let result = try await supervisor.deviceRequest("counter", device: "pm", body: #"{"op":"power-button"}"#)
        #expect(result.hasPrefix("{"))
        var sawOff = false
        for await event in events where event.name == "counter" {
            if event.state == .off, event.reason == "guest powered off" { sawOff = true }
            if sawOff, event.state == .running { break }
        }
        let again = try await supervisor.info("counter")
        #expect(again.restarts == 1)
        #expect(again.lastExit?.reason == "powerOff")
        #expect(again.summary.pid != first)
        _ = try await supervisor.stop("counter")
    }

    @Test("the console shows the ring of recent output to a late attacher")
    func console() async throws {
        let fixture = try SupervisorFixture()
        defer { fixture.remove() }
        let supervisor = try await fixture.supervisor()
        _ = try await supervisor.define(try Self.counterDefinition())
        _ = try await supervisor.start("counter")
        _ = try await SupervisorFixture.waitFor(supervisor, "counter", .running)
        try await Task.sleep(for: .milliseconds(300))
        let console = try await supervisor.console("counter")
        var text = ""
        for await chunk in console.output {
            text += String(decoding: chunk, as: UTF8.self)
            if text.contains("count") && text.contains("\n") { break }
        }
        await console.close()
        #expect(text.contains("count"))
        _ = try await supervisor.stop("counter")
    }
}
