import Foundation
import Logging
import Testing
import VeneerManagement
import WorkerControlProtocol

/// Real workers for VMSupervisor tests: the `veneer` built next to the test binary, a fresh
/// state directory per test, and guest configs written into a temporary directory.
struct SupervisorFixture {
    static let buildDirectory: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On Linux the test bundle is `<build>/VeneerPackageTests.xctest`, a file beside `veneer`.
        if url.lastPathComponent.hasSuffix(".xctest") { url.deleteLastPathComponent() }
        return url.path
    }()

    static var workerExecutable: String { buildDirectory + "/veneer" }

    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let kvmAvailable = access("/dev/kvm", R_OK | W_OK) == 0
    static let workerBuilt = access(buildDirectory + "/veneer", X_OK) == 0
    static var canRunWorkers: Bool { kvmAvailable && workerBuilt }

    let root: String
    let stateDirectory: String
    let guestDirectory: String

    init() throws {
        // Short: the worker's socket path (state/vms/NAME/run/control.sock) must fit in sun_path.
        root = "/tmp/vmt-" + String(UUID().uuidString.prefix(8))
        stateDirectory = root + "/s"
        guestDirectory = root + "/g"
        try FileManager.default.createDirectory(atPath: guestDirectory, withIntermediateDirectories: true)
        // A guest that spins forever in real mode (`jmp $`): it runs until stopped or killed.
        try Data([0xEB, 0xFE]).write(to: URL(fileURLWithPath: guestDirectory + "/spin.bin"))
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    func supervisor(label: String = "test") async throws -> VMSupervisor {
        var logger = Logger(label: "veneerd.\(label)")
        logger.logLevel = .warning
        return try await VMSupervisor(stateDirectory: stateDirectory, workerExecutable: Self.workerExecutable,
                                      pluginSearchPaths: [Self.buildDirectory], logger: logger)
    }

    /// A spinning guest named `name`; its image path is relative, resolved against `guestDirectory`.
    func spinDefinition(_ name: String, policy: RestartPolicy? = nil) -> VMDefinition {
        let config = """
            name = "\(name)"
            memory = "2M"
            vcpus = 1

            [boot]
            format = "flat"
            image = "spin.bin"
            mode = "real"
            load_address = 0x7c00
            """
        return VMDefinition(config: config, directory: guestDirectory, restartPolicy: policy)
    }

    /// Polls until `name` is in `state` (bounded: the worker's start is not timed, only waited for).
    @discardableResult
    static func waitFor(_ supervisor: VMSupervisor, _ name: String, _ state: VMState, seconds: Double = 60) async throws -> VMDetails {
        let deadline = Date().addingTimeInterval(seconds)
        var last: VMDetails?
        while Date() < deadline {
            let details = try await supervisor.info(name)
            if details.summary.state == state { return details }
            last = details
            try await Task.sleep(for: .milliseconds(20))
        }
        throw FixtureError("VM '\(name)' did not reach \(state.rawValue) within \(seconds) s (last: \(last?.summary.state.rawValue ?? "?"), exit: \(String(describing: last?.lastExit)))")
    }

    static func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }

    static func processExists(_ pid: Int32) -> Bool {
        FileManager.default.fileExists(atPath: "/proc/\(pid)")
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
