import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The real `veneerd` executable: serving on its socket, SIGTERM, one veneerd per socket, and a
/// stale socket from a killed veneerd.
@Suite(.serialized) struct VeneerdDaemonTests {
    static func get(_ socketPath: String, _ path: String) async throws -> (Int, [String: Any]) {
        let url = "http+unix://" + (socketPath.addingPercentEncoding(withAllowedCharacters: .urlHostAllowed) ?? socketPath) + path
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        return (Int(response.status.code), object)
    }

    static func send(_ socketPath: String, _ method: HTTPMethod, _ path: String, json: String? = nil) async throws -> (Int, [String: Any], String) {
        let url = "http+unix://" + (socketPath.addingPercentEncoding(withAllowedCharacters: .urlHostAllowed) ?? socketPath) + path
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 20)
        let text = String(buffer: body)
        let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        return (Int(response.status.code), object, text)
    }

    static func state(_ details: [String: Any]) -> String? {
        (details["summary"] as? [String: Any])?["state"] as? String
    }

    static var kvmAvailable: Bool { access("/dev/kvm", R_OK | W_OK) == 0 }

    /// A VM through the real supervisor and a real worker: define (422 for a bad config),
    /// start, pause, resume, its metrics, stop, delete.
    @Test func aVMsLifeThroughTheRealSupervisor() async throws {
        let daemon = try VeneerdProcess()
        defer { daemon.stopAndCollect() }
        let guest = try TemporaryDirectory()
        // A guest that spins forever in real mode (`jmp $`).
        try Data([0xEB, 0xFE]).write(to: URL(fileURLWithPath: guest.path + "/spin.bin"))
        let config = #"name = \"spin\"\nmemory = \"2M\"\nvcpus = 1\n\n[boot]\nformat = \"flat\"\nimage = \"spin.bin\"\nmode = \"real\"\nload_address = 0x7c00\n"#
        let socket = daemon.socketPath

        let bad = try await Self.send(socket, .POST, "/v1/vms", json: #"{"config":"name = \"spin\"\nturbo = true\n","directory":"\#(guest.path)"}"#)
        #expect(bad.0 == 422, "\(bad.2)")
        #expect(bad.1["field"] as? String == "config")

        let defined = try await Self.send(socket, .POST, "/v1/vms", json: #"{"config":"\#(config)","directory":"\#(guest.path)"}"#)
        #expect(defined.0 == 201, "\(defined.2)")
        #expect(Self.state(defined.1) == "Off")
        #expect(FileManager.default.fileExists(atPath: daemon.state.path + "/vms/spin/definition.json"))

        guard Self.kvmAvailable else {
            print("SKIPPED: /dev/kvm is not available: the VM is defined and deleted but not started")
            #expect(try await Self.send(socket, .DELETE, "/v1/vms/spin").0 == 204)
            return
        }
        let started = try await Self.send(socket, .POST, "/v1/vms/spin/start")
        #expect(started.0 == 200, "\(started.2)")
        let again = try await Self.send(socket, .POST, "/v1/vms/spin/start")
        #expect(again.0 == 409)
        #expect(["Starting", "Running"].contains(again.1["state"] as? String ?? ""), "\(again.2)")

        let paused = try await Self.send(socket, .POST, "/v1/vms/spin/pause")
        #expect(paused.0 == 200 && Self.state(paused.1) == "Paused", "\(paused.2)")
        let resumed = try await Self.send(socket, .POST, "/v1/vms/spin/resume")
        #expect(resumed.0 == 200 && Self.state(resumed.1) == "Running", "\(resumed.2)")

        let metrics = try await Self.send(socket, .GET, "/v1/metrics")
        #expect(metrics.2.contains(#"veneer_vcpu_exits_total{vm="spin""#), "\(metrics.2)")
        #expect(metrics.2.contains(#"veneer_vms{state="Running"} 1"#))

        let deleteRunning = try await Self.send(socket, .DELETE, "/v1/vms/spin")
        #expect(deleteRunning.0 == 409)
        let stopped = try await Self.send(socket, .POST, "/v1/vms/spin/stop")
        #expect(stopped.0 == 200, "\(stopped.2)")
        for _ in 0..<100 {
            if Self.state(try await Self.send(socket, .GET, "/v1/vms/spin").1) == "Off" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await Self.send(socket, .DELETE, "/v1/vms/spin").0 == 204)
        #expect(try await Self.send(socket, .GET, "/v1/vms/spin").0 == 404)
    }

    @Test func servesItsSocketAndStopsOnSIGTERM() async throws {
        let daemon = try VeneerdProcess()
        let (status, info) = try await Self.get(daemon.socketPath, "/v1")
        #expect(status == 200)
        #expect(info["pid"] as? Int == Int(daemon.process.processIdentifier))
        #expect(info["stateDirectory"] as? String == daemon.state.path)
        var st = stat()
        #expect(stat(daemon.socketPath, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let (listStatus, _) = try await Self.get(daemon.socketPath, "/v1/vms")
        #expect(listStatus == 200)

        let log = daemon.stopAndCollect()
        #expect(daemon.process.terminationReason == .exit && daemon.process.terminationStatus == 0, "\(log)")
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath))
        #expect(log.contains("veneerd is serving"))
    }

    @Test func aSecondVeneerdOnTheSameSocketIsRefused() throws {
        let first = try VeneerdProcess()
        defer { first.stopAndCollect() }
        let (status, output) = try SocketSecurityTests.run(VeneerdProcess.executable, ["--state-dir", first.state.path])
        #expect(status == 1, "\(output)")
        #expect(output.contains("another veneerd"), "\(output)")
        #expect(VeneerdProcess.accepts(first.socketPath))
    }

    @Test func aStaleSocketFromAKilledVeneerdIsReplaced() async throws {
        let first = try VeneerdProcess()
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        #expect(FileManager.default.fileExists(atPath: first.socketPath))
        let second = try VeneerdProcess(state: first.state)
        defer { second.stopAndCollect() }
        let (status, info) = try await Self.get(second.socketPath, "/v1")
        #expect(status == 200)
        #expect(info["pid"] as? Int == Int(second.process.processIdentifier))
    }
}
