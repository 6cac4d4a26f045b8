import Foundation
import Testing
@testable import VeneerdAPI

/// Bounded property-based runs of schemathesis (PyPI) against a live API on a temporary state
/// directory: every documented operation, generated inputs, no 5xx, answers that match the
/// document (status codes, media types, schemas). One run is against the real `veneerd`
/// (VMSupervisor, real workers), one against the routes over the scripted manager with a
/// Running VM, so the device, KVP, file and console routes get past their VM lookups too.
/// schemathesis speaks TCP, so it reaches the UNIX socket through the test's loopback
/// forwarder. The event stream never ends by design and is left out of the runs
/// (VeneerdRouteTests.eventsStreamAsNDJSON covers it).
enum SchemathesisTool {
    static let path = LoopbackForwarder.which("schemathesis")
}

@Suite(.enabled(if: SchemathesisTool.path != nil && LoopbackForwarder.python != nil,
                "SKIPPED: schemathesis is not installed (scripts/setup --python-tools, or pip install schemathesis)"))
struct SchemathesisTests {
    static let checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

    @Test func theRealVeneerdSurvivesGeneratedRequests() async throws {
        let daemon = try VeneerdProcess()
        defer { daemon.stopAndCollect() }
        let forwarder = try LoopbackForwarder(socketPath: daemon.socketPath)
        defer { forwarder.stop() }
        let (status, output) = try await Self.fuzz(port: forwarder.port, examples: 30)
        #expect(status == 0, "schemathesis found problems:\n\(output)")
        #expect(output.contains("/v1/vms"), "schemathesis did not exercise the API:\n\(output)")
        #expect(daemon.process.isRunning, "veneerd died under the fuzz run")
    }

    @Test func everyOperationSurvivesGeneratedRequestsOnARunningVM() async throws {
        try await APIHarness.with { api in
            // The document's example VM ("vm1", device "kvp0") exists and runs, with kvp and fcopy
            // devices; another VM is Off.
            try await api.define("vm1")
            try await api.define("vm2")
            _ = try await api.request(.POST, "/v1/vms/vm1/start")
            try FileManager.default.createDirectory(atPath: api.state.path + "/vms/vm1", withIntermediateDirectories: true)
            let forwarder = try LoopbackForwarder(socketPath: api.socketPath)
            defer { forwarder.stop() }
            let (status, output) = try await Self.fuzz(port: forwarder.port, examples: 20)
            #expect(status == 0, "schemathesis found problems:\n\(output)")
            #expect(output.contains("/v1/vms"), "schemathesis did not exercise the API:\n\(output)")
        }
    }

    /// One seeded, bounded schemathesis run against 127.0.0.1:`port`.
    static func fuzz(port: Int, examples: Int) async throws -> (Int32, String) {
        let executable = try #require(SchemathesisTool.path)
        let report = try TemporaryDirectory()
        let arguments = [
            "run", OpenAPIAgreementTests.documentPath,
            "--url", "http://127.0.0.1:\(port)",
            "--checks", checks,
            "--exclude-path", "/v1/events",
            "--max-examples", String(examples),
            "--seed", "20261207",
            "--workers", "1",
            "--request-timeout", "20",
            "--report-dir", report.path,
        ]
        let (status, output) = try await run(executable, arguments, directory: report.path)
        print(output.split(separator: "\n").suffix(12).joined(separator: "\n"))
        return (status, output)
    }

    /// Runs in `directory`, where schemathesis also leaves its cache (`.schemathesis/`).
    static func run(_ executable: String, _ arguments: [String], directory: String) async throws -> (Int32, String) {
        let process = Process()
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        environment["SCHEMATHESIS_TELEMETRY"] = "false"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // Read on another thread so the server (on this process's event loops) keeps serving.
        let data = await Task.detached { pipe.fileHandleForReading.readDataToEndOfFile() }.value
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
