import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// veneerd's HTTP API over its UNIX socket (AsyncHTTPClient's http+unix transport). Every
/// non-2xx answer becomes a `CtlFailure` carrying the problem+json detail.
struct VeneerdClient: Sendable {
    let socketPath: String
    private let http: HTTPClient

    /// Largest response body read whole (list, info, metrics of many VMs).
    static let maxResponseBytes = 64 << 20
    /// An operation veneerd performs synchronously (start waits for the worker's hello, stop for
    /// its exit); generous so a loaded host is not mistaken for a dead service.
    static let requestTimeout: TimeAmount = .seconds(300)

    struct Reply: Sendable {
        var status: Int
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// A client for the duration of `body`; the connection pool is shut down on every path.
    static func with<T: Sendable>(socket: String, _ body: @Sendable (VeneerdClient) async throws -> T) async throws -> T {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10))
        let http = HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton), configuration: configuration)
        let client = VeneerdClient(socketPath: socket, http: http)
        do {
            let result = try await body(client)
            try? await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    /// `path` is already percent-encoded (see `segment`); `query` values are encoded here.
    func url(_ path: String, query: [(String, String)] = []) throws(CtlFailure) -> String {
        var uri = path
        if !query.isEmpty {
            uri += "?" + query.map { "\($0.0)=\(Self.queryValue($0.1))" }.joined(separator: "&")
        }
        guard let url = URL(httpURLWithSocketPath: socketPath, uri: uri) else {
            throw CtlFailure(.cannotConnect, "'\(socketPath)' cannot be used as a socket path")
        }
        return url.absoluteString
    }

    /// One path segment (a VM name, a device id, a KVP key) percent-encoded.
    static func segment(_ text: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/;?#%")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    static func queryValue(_ text: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?#%")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// Sends a request and reads the whole answer; 2xx is returned, anything else thrown.
    func send(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], json: [UInt8]? = nil,
              octets: [UInt8]? = nil) async throws(CtlFailure) -> Reply {
        var request = HTTPClientRequest(url: try url(path, query: query))
        request.method = method
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: json))
        } else if let octets {
            request.headers.add(name: "Content-Type", value: "application/octet-stream")
            request.body = .bytes(ByteBuffer(bytes: octets))
        }
        let response = try await execute(request, timeout: Self.requestTimeout, what: "\(method) \(path)")
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: Self.maxResponseBytes)
        } catch {
            throw CtlFailure(.failed, "reading veneerd's answer to \(method) \(path) failed: \(error)")
        }
        let reply = Reply(status: Int(response.status.code), body: Array(body.readableBytesView))
        guard (200..<300).contains(reply.status) else { throw Self.failure(reply) }
        return reply
    }

    /// Sends a GET whose answer is a stream (events): the caller reads `body` until it ends.
    func stream(_ path: String) async throws(CtlFailure) -> HTTPClientResponse {
        let request = HTTPClientRequest(url: try url(path))
        let response = try await execute(request, timeout: nil, what: "GET \(path)")
        guard (200..<300).contains(Int(response.status.code)) else {
            let body = (try? await response.body.collect(upTo: Self.maxResponseBytes)).map { Array($0.readableBytesView) } ?? []
            throw Self.failure(Reply(status: Int(response.status.code), body: body))
        }
        return response
    }

    private func execute(_ request: HTTPClientRequest, timeout: TimeAmount?, what: String) async throws(CtlFailure) -> HTTPClientResponse {
        do {
            if let timeout {
                return try await http.execute(request, timeout: timeout)
            }
            return try await http.execute(request, deadline: .distantFuture)
        } catch {
            throw connectionFailure(error, what: what)
        }
    }

    /// Why no answer came: the socket is missing, refused or unreadable (cannot connect), or the
    /// exchange broke after connecting (failed).
    func connectionFailure(_ error: any Error, what: String) -> CtlFailure {
        var info = stat()
        guard stat(socketPath, &info) == 0 else {
            return CtlFailure(.cannotConnect, "cannot connect to veneerd at \(socketPath): no such socket (is veneerd running? see --socket and VENEER_SOCKET)")
        }
        if let io = error as? IOError, [ECONNREFUSED, ENOENT, EACCES, ENOTSOCK, EPERM].contains(io.errnoCode) {
            return CtlFailure(.cannotConnect, "cannot connect to veneerd at \(socketPath): \(String(cString: strerror(io.errnoCode)))")
        }
        if let client = error as? HTTPClientError, client == .connectTimeout || client == .remoteConnectionClosed {
            return CtlFailure(.cannotConnect, "cannot connect to veneerd at \(socketPath): \(client)")
        }
        if error is NIOConnectionError || error is ChannelError {
            return CtlFailure(.cannotConnect, "cannot connect to veneerd at \(socketPath): \(error)")
        }
        return CtlFailure(.failed, "\(what) to veneerd at \(socketPath) failed: \(error)")
    }

    /// The problem+json an error answer carries (RFC 9457); only what ctl shows.
    private struct Problem: Decodable {
        var detail: String?
        var title: String?
        var state: String?
    }

    static func failure(_ reply: Reply) -> CtlFailure {
        let kind = CtlFailure.kind(forStatus: reply.status)
        guard let problem = try? JSONDecoder().decode(Problem.self, from: Data(reply.body)) else {
            let text = reply.text.trimmingCharacters(in: .whitespacesAndNewlines)
            return CtlFailure(kind, "veneerd answered HTTP \(reply.status)\(text.isEmpty ? "" : ": \(text.prefix(200))")")
        }
        return CtlFailure(kind, problem.detail ?? problem.title ?? "veneerd answered HTTP \(reply.status)")
    }
}

extension VeneerdClient {
    func decode<T: Decodable>(_ type: T.Type, _ reply: Reply, what: String) throws(CtlFailure) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(reply.body))
        } catch {
            throw CtlFailure(.failed, "veneerd's answer to \(what) is not the expected JSON: \(error)")
        }
    }

    static func encode<T: Encodable>(_ value: T) throws(CtlFailure) -> [UInt8] {
        do {
            return Array(try JSONEncoder().encode(value))
        } catch {
            throw CtlFailure(.failed, "cannot encode the request: \(error)")
        }
    }
}
