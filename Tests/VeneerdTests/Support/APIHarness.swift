import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import Prometheus
import ServiceLifecycle
import Synchronization
import VeneerManagement
import VeneerdAPI

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A temporary directory removed when the test ends.
final class TemporaryDirectory: Sendable {
    let path: String
    init() throws {
        var template = Array("/tmp/veneerd-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed: \(errno)") }
        path = String(cString: made)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// veneerd's request counters go through swift-metrics, which may be bootstrapped once per
/// process: every harness shares this registry.
enum TestMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

/// The API served in-process on a UNIX socket in a temporary state directory, with an HTTP
/// client over that socket.
struct APIHarness {
    let manager: ScriptedManager
    let state: TemporaryDirectory
    let socketPath: String
    let api: VeneerdAPI

    struct Reply {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        func json() throws -> [String: Any] {
            guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { throw TestFailure("not a JSON object: \(text)") }
            return object
        }
    }

    /// Runs `body` with a live server; the server stops (gracefully) when it returns.
    static func with<T: Sendable>(policy: PeerPolicy = .sameUserOrRoot, group: gid_t? = nil,
                                  _ body: @Sendable (APIHarness) async throws -> T) async throws -> T {
        let manager = ScriptedManager()
        let state = try TemporaryDirectory()
        let socketPath = state.path + "/veneerd.sock"
        var logger = Logger(label: "veneerd-test")
        logger.logLevel = .warning
        let api = VeneerdAPI(manager: manager, stateDirectory: state.path, daemonMetrics: TestMetrics.registry, logger: logger)
        let server = APIServer(socketPath: socketPath, socketGroup: group, policy: policy)
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let application = try server.makeApplication(api: api, logger: logger, onReady: { readyContinuation.yield() })
        let harness = APIHarness(manager: manager, state: state, socketPath: socketPath, api: api)
        // Stopped the way SIGTERM stops veneerd: a graceful shutdown of its service group.
        let services = ServiceGroup(configuration: .init(services: [application], logger: logger))
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await services.run()
                return nil
            }
            var iterator = ready.makeAsyncIterator()
            _ = await iterator.next()
            do {
                let result = try await body(harness)
                await services.triggerGracefulShutdown()
                try await group.waitForAll()
                return result
            } catch {
                await services.triggerGracefulShutdown()
                try? await group.waitForAll()
                throw error
            }
        }
    }

    var baseURL: String {
        "http+unix://" + (socketPath.addingPercentEncoding(withAllowedCharacters: .urlHostAllowed) ?? socketPath)
    }

    func request(_ method: HTTPMethod, _ path: String, json: String? = nil, bytes: [UInt8]? = nil,
                 headers: [(String, String)] = []) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        } else if let bytes {
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
                request.headers.add(name: "Content-Type", value: "application/octet-stream")
            }
            request.body = .bytes(ByteBuffer(bytes: bytes))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: Array(body.readableBytesView))
    }

    /// Defines VM `name` with a minimal config.
    @discardableResult
    func define(_ name: String) async throws -> Reply {
        let body = #"{"name":"\#(name)","config":"[machine]\nmemory = \"64M\"\n","directory":"/tmp"}"#
        return try await request(.POST, "/v1/vms", json: body)
    }
}
