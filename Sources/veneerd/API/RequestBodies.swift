import Foundation
import Hummingbird
import NIOCore

/// Reading request bodies within their limits, and decoding JSON into the API's types with
/// errors that name the member at fault.
enum RequestBodies {
    /// Every JSON body: definitions, device requests, KVP values.
    static let jsonLimit = 1 << 20
    /// A file upload's bytes.
    static let uploadLimit = 256 << 20

    /// The body's bytes, at most `limit` (413 beyond it; a declared Content-Length over the
    /// limit is refused before reading).
    static func collect(_ request: Request, limit: Int) async throws(Problem) -> ByteBuffer {
        try checkDeclaredLength(request, limit: limit)
        do {
            return try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw tooLarge(limit)
        } catch {
            throw Problem(.invalidRequest, status: .badRequest, detail: "the request body could not be read: \(error)", field: "body")
        }
    }

    static func checkDeclaredLength(_ request: Request, limit: Int) throws(Problem) {
        guard let declared = request.headers[.contentLength] else { return }
        guard let length = Int(declared), length >= 0 else {
            throw Problem.invalid("Content-Length", "'\(declared)' is not a length")
        }
        if length > limit { throw tooLarge(limit) }
    }

    static func tooLarge(_ limit: Int) -> Problem {
        Problem(.tooLarge, status: .contentTooLarge, detail: "the request body is larger than the \(limit) bytes this route accepts", field: "body")
    }

    /// Requires a JSON media type when the client declared one (a body without Content-Type is
    /// read as JSON, which is what curl and most clients send by default).
    static func requireJSONMediaType(_ request: Request) throws(Problem) {
        guard let type = request.headers[.contentType] else { return }
        let media = type.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard media == "application/json" || (media.hasPrefix("application/") && media.hasSuffix("+json")) else {
            throw Problem(.unsupportedMediaType, status: .unsupportedMediaType, detail: "expected application/json, got '\(type)'", field: "Content-Type")
        }
    }

    /// Decodes a JSON body of at most 1 MiB into `T`.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws(Problem) -> T {
        try requireJSONMediaType(request)
        let buffer = try await collect(request, limit: jsonLimit)
        return try decode(type, from: Data(buffer.readableBytesView))
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(Problem) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw Problem(decoding: error, body: "body")
        } catch let problem as Problem {
            throw problem
        } catch {
            throw Problem.invalid("body", "does not decode: \(error)")
        }
    }

    /// An optional JSON body: nil when the request has none.
    static func decodeIfPresent<T: Decodable>(_ type: T.Type, from request: Request) async throws(Problem) -> T? {
        try requireJSONMediaType(request)
        let buffer = try await collect(request, limit: jsonLimit)
        if buffer.readableBytes == 0 { return nil }
        return try decode(type, from: Data(buffer.readableBytesView))
    }

    /// A body that must be one JSON object with a string member "op" (a device request): its text.
    static func jsonObjectText(from request: Request) async throws(Problem) -> String {
        try requireJSONMediaType(request)
        let buffer = try await collect(request, limit: jsonLimit)
        let data = Data(buffer.readableBytesView)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw Problem.invalid("body", "is not valid JSON")
        }
        guard let members = object as? [String: Any] else {
            throw Problem.invalid("body", "must be a JSON object")
        }
        guard let op = members["op"] as? String, !op.isEmpty else {
            throw Problem.invalid("op", "is required: a non-empty string naming the device operation")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw Problem.invalid("body", "is not UTF-8")
        }
        return text
    }

    /// A JSON response body.
    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws(Problem) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return jsonText(Array(try encoder.encode(value)), status: status)
        } catch {
            throw Problem(.failed, status: .internalServerError, detail: "could not encode the response: \(error)")
        }
    }

    static func jsonText(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
