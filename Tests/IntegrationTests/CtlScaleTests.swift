import Foundation
import Testing
import VeneerHost

/// 50 small VMs defined and started through the API at once, then stopped: nothing leaks.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct CtlScaleTests {
    static let count = 50

    /// Runs one `veneer ctl` per argument list, all at once (concurrent requests to veneerd).
    static func concurrently(_ veneerd: VeneerdUnderTest, _ commands: [[String]]) throws -> [VeneerProcess.Result] {
        let processes = try commands.map { arguments in
            try InteractiveProcess(VeneerProcess.executable, ["ctl"] + arguments + ["--socket", veneerd.socket])
        }
        return try processes.map { process in
            process.closeInput()
            let status = try process.wait(timeout: 600)
            return VeneerProcess.Result(status: status, stdout: process.stdout, stderr: process.stderr)
        }
    }

    @Test func fiftyVMsStartAndStopWithoutLeaks() throws {
        let veneerd = try VeneerdUnderTest()
        defer { veneerd.tearDown() }
        // veneerd creates some descriptors once, on its first VM (the exit watcher's wake pipe,
        // NIO's loops): one whole VM cycle first, so the baseline is its steady state and a leak
        // per VM shows as growth across the fifty.
        let warmUp = try CounterGuest.config(name: "warmup", memory: "16M", vcpus: 1)
        for command in [["define", warmUp], ["start", "warmup"], ["stop", "warmup"]] {
            let r = try Self.concurrently(veneerd, [command])
            #expect(r.allSatisfy { $0.status == 0 }, "\(command[0]): \(r.map(\.stderr))")
        }
        try waitUntil("the warm-up worker is gone", timeout: 60) { VeneerdUnderTest.workerPIDs(stateDirectory: veneerd.stateDirectory).isEmpty }
        _ = try Self.concurrently(veneerd, [["delete", "warmup"]])
        let baselineFDs = veneerd.openFileCount
        let names = (1...Self.count).map { String(format: "s%02d", $0) }
        let configs = try names.map { try CounterGuest.config(name: $0, memory: "16M", vcpus: 1) }

        let defined = try Self.concurrently(veneerd, configs.map { ["define", $0] })
        #expect(defined.allSatisfy { $0.status == 0 }, "\(defined.filter { $0.status != 0 }.map(\.stderr))")
        let started = try Self.concurrently(veneerd, names.map { ["start", $0] })
        #expect(started.allSatisfy { $0.status == 0 }, "\(started.filter { $0.status != 0 }.map(\.stderr))")

        var pids: [Int32] = []
        try waitUntil("all \(Self.count) VMs are Running", timeout: 300) {
            let list = try veneerd.json(["list"]) as? [[String: Any]] ?? []
            let running = list.filter { $0["state"] as? String == "Running" }
            pids = running.compactMap { ($0["pid"] as? NSNumber)?.int32Value }
            return running.count == Self.count
        }
        #expect(Set(pids).count == Self.count, "one worker per VM")
        #expect(VeneerdUnderTest.workerPIDs(stateDirectory: veneerd.stateDirectory).count == Self.count)

        let stopped = try Self.concurrently(veneerd, names.map { ["stop", $0] })
        #expect(stopped.allSatisfy { $0.status == 0 }, "\(stopped.filter { $0.status != 0 }.map(\.stderr))")
        let list = try veneerd.json(["list"]) as? [[String: Any]] ?? []
        #expect(list.count == Self.count && list.allSatisfy { $0["state"] as? String == "Off" })

        // No worker left, veneerd's descriptors back where they were, no socket but veneerd's own.
        try waitUntil("every worker is gone", timeout: 60) { pids.allSatisfy(ProcessLiveness.isGone) }
        #expect(VeneerdUnderTest.workerPIDs(stateDirectory: veneerd.stateDirectory).isEmpty)
        try waitUntil("veneerd's fd count returns to \(baselineFDs)", timeout: 30) { veneerd.openFileCount <= baselineFDs }
        #expect(veneerd.openFileCount == baselineFDs)
        #expect(Self.sockets(under: veneerd.stateDirectory) == [veneerd.socket])

        let deleted = try Self.concurrently(veneerd, names.map { ["delete", $0] })
        #expect(deleted.allSatisfy { $0.status == 0 })
        #expect((try veneerd.json(["list"]) as? [Any])?.isEmpty == true)
    }

    /// Every UNIX socket file under `directory`.
    static func sockets(under directory: String) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        return walker.compactMap { $0 as? String }.map { directory + "/" + $0 }.filter { path in
            var info = stat()
            return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
        }.sorted()
    }
}
