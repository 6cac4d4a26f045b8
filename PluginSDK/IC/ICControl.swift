import VeneerPluginKit

/// What every IC plugin's management requests (ABI 1.8) share: the answers to a request it
/// cannot take, and decoding a request's members into a typed error.
public enum ICControl {
    /// The answer to an op the service does not take: `.invalid` when the body is not a JSON
    /// object with an "op" string at all, else `.unsupported`, naming the ops it does take.
    public static func unknownOp(_ request: ControlRequest, service: String, ops: [String]) -> ControlReply {
        guard !request.op.isEmpty else {
            return .failure(.invalid, message: "\(service): a request is a JSON object with an \"op\" string (one of \(ops.joined(separator: ", ")))")
        }
        return .failure(.unsupported, message: "\(service) takes no op '\(request.op.prefix(64))' (it takes \(ops.joined(separator: ", ")))")
    }

    /// `.notNow` for a channel the guest has not opened or whose negotiation has not succeeded.
    public static func notConnected(_ endpoint: ICEndpoint) -> ControlReply {
        .failure(.notNow, message: "the guest has not connected to the \(endpoint.profile.name) service (channel \(endpoint.phase))")
    }

    /// The request's members as `T`, or the `.invalid` answer naming what is wrong.
    public static func decode<T: Decodable>(_ request: ControlRequest, as type: T.Type) throws(ControlFailureReply) -> T {
        do { return try request.decode(T.self) } catch {
            throw ControlFailureReply(reply: .failure(.invalid, message: error.description))
        }
    }

    /// How a management view names the channel's phase.
    public static func connection(_ phase: ICPhase) -> String {
        switch phase {
        case .closed: "not-connected"
        case .negotiating: "negotiating"
        case .ready: "connected"
        case .failed: "negotiation-failed"
        }
    }
}

/// A `ControlReply` as an Error, so decoding can fail with the reply to give.
public struct ControlFailureReply: Error, Sendable {
    public let reply: ControlReply
}
