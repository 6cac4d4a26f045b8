import Foundation
import Testing
@testable import VeneerdAPI

/// A bounded property-based run of schemathesis (PyPI) against a live API on a temporary state
/// directory: every documented operation, generated inputs, no 5xx, answers that match the
/// document (status codes, media types, schemas). schemathesis speaks TCP, so it reaches the
/// UNIX socket through the test's loopback forwarder. The event stream never ends by design and
/// is left out of the run (VeneerdRouteTests.eventsStreamAsNDJSON covers it).
enum SchemathesisTool {
    static let path = LoopbackForwarder.which("schemathesis")
}

@Suite(.enabled(if: SchemathesisTool.path != nil && LoopbackForwarder.python != nil,
                "SKIPPED: schemathesis is not installed (scripts/setup --python-tools, or pip install schemathesis)"))
struct SchemathesisTests {
    static let checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

    @Test func everyOperationSurvivesGeneratedRequests() async throws {
        let executable = try #require(SchemathesisTool.path)
        try await APIHarness.with { api in
            // Some VMs to find: one Off, one Running (with kvp and fcopy devices).
            try await api.define("fuzz-off")
            try await api.define("fuzz-on")
            _ = try await api.request(.POST, "/v1/vms/fuzz-on/start")
            try FileManager.default.createDirectory(atPath: api.state.path + "/vms/fuzz-on", withIntermediateDirectories: true)
            let forwarder = try LoopbackForwarder(socketPath: api.socketPath)
            defer { forwarder.stop() }
            let report = try TemporaryDirectory()
            let arguments = [
                "run", OpenAPIAgreementTests.documentPath,
                "--url", "http://127.0.0.1:\(forwarder.port)",
                "--checks", Self.checks,
                "--exclude-path", "/v1/events",
                "--max-examples", "30",
                "--seed", "20261207",
                "--workers", "1",
                "--request-timeout", "20",
                "--report-dir", report.path,
            ]
            let (status, output) = try await Self.run(executable, arguments)
            print(output.split(separator: "\n").suffix(25).joined(separator: "\n"))
            #expect(status == 0, "schemathesis found problems:\n\(output)")
            #expect(output.contains("/v1/vms"), "schemathesis did not exercise the API:\n\(output)")
        }
    }

    static func run(_ executable: String, _ arguments: [String]) async throws -> (Int32, String) {
        let process = Process()
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
