import AsyncHTTPClient
import Foundation
import NIOCore
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
        #expect(throws: TestFailure.self) { _ = try VeneerdProcess(state: first.state) }
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
