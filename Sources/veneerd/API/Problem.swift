import Foundation
import Hummingbird
import VeneerManagement
import WorkerControlProtocol

/// An RFC 9457 problem detail: the body of every error veneerd answers, as
/// `application/problem+json`. `field` names the request member at fault; `state` is the VM's
/// current state when an operation is not allowed in it (409).
public struct Problem: Error, Codable, Sendable, Equatable, HTTPResponseError {
    /// A URI reference naming the kind of problem (stable; clients may switch on it).
    public var type: String
    public var title: String
    public var statusCode: Int
    public var detail: String
    public var field: String?
    public var state: String?

    enum CodingKeys: String, CodingKey {
        case type, title, statusCode = "status", detail, field, state
    }

    public init(_ kind: Kind, status: HTTPResponse.Status, detail: String, field: String? = nil, state: String? = nil) {
        self.type = "urn:veneer:problem:\(kind.rawValue)"
        self.title = kind.title
        self.statusCode = status.code
        self.detail = detail
        self.field = field
        self.state = state
    }

    /// The kinds of problem the API reports.
    public enum Kind: String, Sendable, CaseIterable {
        case invalidRequest = "invalid-request"
        case invalidConfig = "invalid-config"
        case notFound = "not-found"
        case noRoute = "no-route"
        case methodNotAllowed = "method-not-allowed"
        case exists
        case invalidTransition = "invalid-transition"
        case conflict
        case tooLarge = "too-large"
        case unsupportedMediaType = "unsupported-media-type"
        case upgradeRequired = "upgrade-required"
        case forbidden
        case unsupported
        case timeout
        case failed

        var title: String {
            switch self {
            case .invalidRequest: "Invalid request"
            case .invalidConfig: "Invalid VM configuration"
            case .notFound: "Not found"
            case .noRoute: "No such route"
            case .methodNotAllowed: "Method not allowed"
            case .exists: "Already exists"
            case .invalidTransition: "Not allowed in the VM's current state"
            case .conflict: "Conflict"
            case .tooLarge: "Request body too large"
            case .unsupportedMediaType: "Unsupported media type"
            case .upgradeRequired: "WebSocket upgrade required"
            case .forbidden: "Forbidden"
            case .unsupported: "Not supported"
            case .timeout: "Timed out"
            case .failed: "Operation failed"
            }
        }
    }

    public static func invalid(_ field: String, _ reason: String) -> Problem {
        Problem(.invalidRequest, status: .badRequest, detail: "\(field): \(reason)", field: field)
    }

    // MARK: HTTPResponseError

    public var status: HTTPResponse.Status { HTTPResponse.Status(code: statusCode) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    /// The problem as an HTTP response (also used outside a request context, e.g. by the
    /// peer-credentials check).
    public func response() -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: encoded())))
    }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding five strings and an integer cannot fail; fall back to a fixed body regardless.
        return (try? Array(encoder.encode(self))) ?? Array(#"{"status":500,"title":"Operation failed","type":"urn:veneer:problem:failed"}"#.utf8)
    }
}

extension Problem {
    /// Maps the management core's errors to HTTP: 404 unknown VM or device, 409 conflicts
    /// (with the current state), 400/422 invalid input, 501/504/500 from the worker or host.
    public init(_ error: ManagementError) {
        switch error {
        case .notFound:
            self.init(.notFound, status: .notFound, detail: error.description, field: "name")
        case .noDevice:
            self.init(.notFound, status: .notFound, detail: error.description, field: "device")
        case .exists:
            self.init(.exists, status: .conflict, detail: error.description, field: "name")
        case .invalidTransition(_, _, let state):
            self.init(.invalidTransition, status: .conflict, detail: error.description, state: state.rawValue)
        case .invalid(let field, _):
            // The config text parsed as a string but does not describe a valid VM: 422.
            if field == "config" || field.hasPrefix("config.") || field.hasPrefix("config[") {
                self.init(.invalidConfig, status: .unprocessableContent, detail: error.description, field: field)
            } else {
                self.init(.invalidRequest, status: .badRequest, detail: error.description, field: field)
            }
        case .worker(let workerError):
            self.init(workerError)
        case .host(let message):
            self.init(.failed, status: .internalServerError, detail: message)
        }
    }

    public init(_ error: WorkerError) {
        switch error.code {
        case .invalid: self.init(.invalidRequest, status: .badRequest, detail: error.message)
        case .conflict: self.init(.conflict, status: .conflict, detail: error.message, state: error.state?.rawValue)
        case .notFound: self.init(.notFound, status: .notFound, detail: error.message)
        case .unsupported: self.init(.unsupported, status: .notImplemented, detail: error.message)
        case .timeout: self.init(.timeout, status: .gatewayTimeout, detail: error.message)
        case .failed: self.init(.failed, status: .internalServerError, detail: error.message)
        }
    }

    /// A JSON body that did not decode: names the member at fault by its coding path.
    public init(decoding error: DecodingError, body: String) {
        func path(_ codingPath: [any CodingKey], appending key: (any CodingKey)? = nil) -> String {
            let keys = codingPath + (key.map { [$0] } ?? [])
            let joined = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            let trimmed = joined.hasPrefix(".") ? String(joined.dropFirst()) : joined
            return trimmed.isEmpty ? body : trimmed
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath, appending: key)
            self = .invalid(field, "is required")
        case .typeMismatch(let type, let context):
            self = .invalid(path(context.codingPath), "expected \(Self.jsonTypeName(type))")
        case .valueNotFound(let type, let context):
            self = .invalid(path(context.codingPath), "expected \(Self.jsonTypeName(type)), got null")
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            if context.codingPath.isEmpty {
                self = .invalid(field, "is not valid JSON")
            } else {
                self = .invalid(field, context.debugDescription)
            }
        @unknown default:
            self = .invalid(body, "does not decode")
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is UInt64.Type, is Int32.Type: "an integer"
        case is Double.Type: "a number"
        default: "a value of type \(type)"
        }
    }
}
