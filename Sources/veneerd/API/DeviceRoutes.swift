import Foundation
import Hummingbird
import NIOCore
import VeneerManagement
import WorkerControlProtocol

/// Device requests, and the KVP and file-copy routes that are device requests to the VM's
/// `kvp` / `fcopy` integration services (found by plugin name among the worker's devices).
extension VeneerdAPI {
    /// Device ids come from the VM's config; bound them before they travel to the worker.
    static let maxDeviceIDBytes = 128

    func deviceRequest(_ request: Request, _ context: APIContext) async throws -> Response {
        let name = try Self.vmName(context)
        let device = try Self.pathParameter(context, "device")
        guard (1...Self.maxDeviceIDBytes).contains(device.utf8.count), !device.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw Problem.invalid("device", "must be 1-\(Self.maxDeviceIDBytes) bytes without control characters")
        }
        let body = try await RequestBodies.jsonObjectText(from: request)
        let result = try await manager.deviceRequest(name, device: device, body: body)
        return RequestBodies.jsonText(Array(result.utf8))
    }

    /// The id of the VM's device whose plugin is `plugin`; 409 when the VM has no live worker,
    /// 404 when it has no such device.
    func device(ofPlugin plugin: String, service: String, vm name: String) async throws -> String {
        let details = try await manager.info(name)
        guard let worker = details.worker else {
            throw Problem(.invalidTransition, status: .conflict,
                          detail: "VM '\(name)' is \(details.summary.state.rawValue): the \(service) needs it Running or Paused",
                          state: details.summary.state.rawValue)
        }
        guard let device = worker.devices.first(where: { $0.plugin == plugin }) else {
            throw Problem(.notFound, status: .notFound, detail: "VM '\(name)' has no \(service) (no device with plugin \"\(plugin)\")", field: "name")
        }
        return device.id
    }

    // MARK: KVP

    /// The pools of the Linux KVP daemon; "external" is the host's pool 0.
    static let kvpPools: Set<String> = ["external", "guest", "auto", "auto-external", "auto-internal"]
    /// Hyper-V's KVP exchange limits, in bytes.
    static let maxKVPKeyBytes = 512
    static let maxKVPValueBytes = 2048

    struct KVPRequest: Encodable {
        var op: String
        var pool: String?
        var key: String?
        var value: String?
    }

    struct KVPValueBody: Decodable {
        var value: String
    }

    static func kvpPool(_ request: Request) throws(Problem) -> String {
        guard let raw = request.uri.queryParameters["pool"] else { return "external" }
        let pool = String(raw)
        guard kvpPools.contains(pool) else {
            throw Problem.invalid("pool", "'\(pool)' is not a pool: one of \(kvpPools.sorted().joined(separator: ", "))")
        }
        return pool
    }

    static func kvpKey(_ context: APIContext) throws(Problem) -> String {
        let key = try pathParameter(context, "key")
        guard (1...maxKVPKeyBytes).contains(key.utf8.count) else { throw Problem.invalid("key", "must be 1-\(maxKVPKeyBytes) bytes of UTF-8") }
        guard !key.utf8.contains(0) else { throw Problem.invalid("key", "must not contain NUL characters") }
        return key
    }

    private func kvp(_ name: String, _ body: KVPRequest) async throws -> String {
        let device = try await device(ofPlugin: "kvp", service: "KVP integration service", vm: name)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(body), as: UTF8.self)
        return try await manager.deviceRequest(name, device: device, body: text)
    }

    func kvpList(_ request: Request, _ context: APIContext) async throws -> Response {
        let name = try Self.vmName(context)
        let pool = try Self.kvpPool(request)
        return RequestBodies.jsonText(Array(try await kvp(name, KVPRequest(op: "list", pool: pool)).utf8))
    }

    func kvpGet(_ request: Request, _ context: APIContext) async throws -> Response {
        let name = try Self.vmName(context)
        let key = try Self.kvpKey(context)
        let pool = try Self.kvpPool(request)
        return RequestBodies.jsonText(Array(try await kvp(name, KVPRequest(op: "get", pool: pool, key: key)).utf8))
    }

    /// Sets a key in the host-to-guest pool ("external").
    func kvpSet(_ request: Request, _ context: APIContext) async throws -> Response {
        let name = try Self.vmName(context)
        let key = try Self.kvpKey(context)
        let body = try await RequestBodies.decode(KVPValueBody.self, from: request)
        guard body.value.utf8.count <= Self.maxKVPValueBytes else { throw Problem.invalid("value", "is longer than \(Self.maxKVPValueBytes) bytes") }
        guard !body.value.utf8.contains(0) else { throw Problem.invalid("value", "must not contain NUL characters") }
        _ = try await kvp(name, KVPRequest(op: "set", key: key, value: body.value))
        return Response(status: .noContent)
    }

    func kvpDelete(_ request: Request, _ context: APIContext) async throws -> Response {
        let name = try Self.vmName(context)
        let key = try Self.kvpKey(context)
        _ = try await kvp(name, KVPRequest(op: "delete", key: key))
        return Response(status: .noContent)
    }

    // MARK: Files

    /// The guest path limit of the file-copy service (Windows MAX_PATH, UTF-16 units).
    static let maxGuestPathUnits = 260

    struct CopyRequest: Encodable {
        var op = "copy"
        var source: String
        var destination: String
        var overwrite: Bool
        var createPath: Bool
    }

    static func boolQuery(_ request: Request, _ name: String) throws(Problem) -> Bool {
        guard let raw = request.uri.queryParameters[Substring(name)] else { return false }
        switch raw {
        case "true", "1": return true
        case "false", "0": return false
        default: throw Problem.invalid(name, "'\(raw)' is not a boolean: true or false")
        }
    }

    /// Streams the body (at most 256 MiB) to `<state>/vms/<name>/uploads/<random>`, has the
    /// VM's fcopy service copy it into the guest, and removes it whatever happened.
    func upload(_ request: Request, _ context: APIContext) async throws -> Response {
        let name = try Self.vmName(context)
        guard let rawDestination = request.uri.queryParameters["destination"] else {
            throw Problem.invalid("destination", "is required: the absolute guest path to write")
        }
        let destination = String(rawDestination)
        guard destination.hasPrefix("/") || destination.range(of: #"^[A-Za-z]:\\"#, options: .regularExpression) != nil else {
            throw Problem.invalid("destination", "must be an absolute guest path")
        }
        guard destination.utf16.count <= Self.maxGuestPathUnits else {
            throw Problem.invalid("destination", "is longer than \(Self.maxGuestPathUnits) UTF-16 units")
        }
        guard !destination.utf8.contains(0) else { throw Problem.invalid("destination", "must not contain NUL characters") }
        let overwrite = try Self.boolQuery(request, "overwrite")
        let createPath = try Self.boolQuery(request, "createPath")
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/octet-stream") {
            throw Problem(.unsupportedMediaType, status: .unsupportedMediaType, detail: "expected application/octet-stream, got '\(type)'", field: "Content-Type")
        }
        try RequestBodies.checkDeclaredLength(request, limit: RequestBodies.uploadLimit)

        let device = try await device(ofPlugin: "fcopy", service: "file copy integration service", vm: name)
        let uploads = try UploadDirectory(stateDirectory: stateDirectory, vm: name)
        let path = uploads.newFilePath()
        defer { uploads.remove(path) }
        do {
            try await FileIO().writeFile(contents: LimitedBody(base: request.body, limit: RequestBodies.uploadLimit), path: path, context: context)
        } catch let problem as Problem {
            throw problem
        } catch {
            throw Problem(.failed, status: .internalServerError, detail: "could not store the upload under \(uploads.path): \(error)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = String(decoding: try encoder.encode(CopyRequest(source: path, destination: destination, overwrite: overwrite, createPath: createPath)), as: UTF8.self)
        let result = try await manager.deviceRequest(name, device: device, body: body)
        return RequestBodies.jsonText(Array(result.utf8))
    }
}

/// A request body that throws 413 once more than `limit` bytes arrived.
struct LimitedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let limit: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let limit: Int
        var total = 0

        mutating func next() async throws -> ByteBuffer? {
            guard let buffer = try await base.next() else { return nil }
            total += buffer.readableBytes
            if total > limit { throw RequestBodies.tooLarge(limit) }
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), limit: limit)
    }
}

/// `<state>/vms/<name>/uploads/`: where uploads wait for the fcopy service. The VM's name is
/// validated before this is made, so the path stays inside the state directory.
struct UploadDirectory {
    let path: String

    init(stateDirectory: String, vm name: String) throws(Problem) {
        let vmDirectory = "\(stateDirectory)/vms/\(name)"
        path = "\(vmDirectory)/uploads"
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            let reason = String(cString: strerror(errno))
            throw Problem(.failed, status: .internalServerError, detail: "cannot create \(path): \(reason)")
        }
    }

    func newFilePath() -> String {
        var generator = SystemRandomNumberGenerator()
        let token = (0..<2).map { _ in String(generator.next() as UInt64, radix: 16) }.joined(separator: "-")
        return "\(path)/\(token)"
    }

    func remove(_ file: String) {
        _ = unlink(file)
    }
}
