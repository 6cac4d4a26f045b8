import FoundationEssentials
import VeneerPluginABI
#if canImport(Glibc)
import Glibc
#endif

/// A management request for one device (ABI 1.8): what veneerd or `veneer ctl` asked of it, as a
/// JSON object with at least `{"op": "..."}`. Which ops a plugin takes is its own documented
/// interface; anything else deserves `ControlReply.failure(.unsupported, ...)`.
public struct ControlRequest: Sendable {
    /// The host's handle for the answer (`HostServices.reply`).
    public let id: UInt64
    /// The request's `op` member ("" when the body has none or is not a JSON object).
    public let op: String
    /// The whole JSON object, as the host passed it.
    public let body: [UInt8]

    public init(id: UInt64, body: [UInt8]) {
        self.id = id
        self.body = body
        struct Op: Decodable { var op: String }
        op = (try? JSONDecoder().decode(Op.self, from: Data(body)))?.op ?? ""
    }

    /// The body decoded as `T`; a body that does not fit is a one-line error naming what is wrong.
    public func decode<T: Decodable>(_ type: T.Type) throws(PluginError) -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(body)) } catch {
            throw PluginError("request '\(op)': \(ControlRequest.describe(error))")
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "missing member '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
             DecodingError.dataCorrupted(let context):
            "member '\(context.codingPath.map(\.stringValue).joined(separator: "."))': \(context.debugDescription)"
        default: "\(error)"
        }
    }
}

/// A device's answer to a `ControlRequest`.
public enum ControlReply: Sendable, Equatable {
    /// Done: `json` is the result (any JSON value; `{}` when there is nothing to say).
    case success(json: String)
    case failure(ControlFailure, message: String)

    /// Done, with `value` encoded as the JSON result.
    public static func encoding<T: Encodable>(_ value: T) -> ControlReply {
        do { return .success(json: String(decoding: try JSONEncoder().encode(value), as: UTF8.self)) } catch {
            return .failure(.invalid, message: "cannot encode the result: \(error)")
        }
    }

    public static let done = ControlReply.success(json: "{}")
}

/// Why a request failed; veneerd maps these to HTTP statuses (400, 409, 501, 500).
public enum ControlFailure: Sendable, Equatable {
    /// The request is malformed or names something that does not exist (400).
    case invalid
    /// The device cannot do it now, e.g. the guest has not connected (409).
    case notNow
    /// The device has no such op (501).
    case unsupported
    /// It was tried and failed (500).
    case failed

    var status: veneer_status {
        switch self {
        case .invalid: veneer_status(VENEER_EINVAL)
        case .notNow: veneer_status(VENEER_EAGAIN)
        case .unsupported: veneer_status(VENEER_ENOTSUP)
        case .failed: veneer_status(VENEER_EIO)
        }
    }
}

/// The VM's run state as devices hear of it (ABI 1.8 `run_state`).
public enum RunState: UInt32, Sendable {
    /// Every vCPU is out of the guest; the device's timers are frozen.
    case paused = 1
    /// Timers run again from where they stopped.
    case resumed = 2
}

/// A metric a device publishes (ABI 1.8); the worker serves it in Prometheus text as
/// `veneer_device_<name>{vm="...",device="..."}`. Updating it is one atomic operation, from any thread.
public struct Metric: Sendable {
    public enum Kind: UInt32, Sendable {
        case counter = 1
        case gauge = 2
    }

    let services: HostServices
    let handle: UInt32

    /// Counters: adds `delta`.
    public func add(_ delta: UInt64 = 1) { services.api.pointee.metric_add?(services.host, handle, delta) }
    /// Gauges: sets the value.
    public func set(_ value: Int64) { services.api.pointee.metric_set?(services.host, handle, value) }
}

extension HostServices {
    /// Registers a metric; from the plugin's `make` only. A host older than ABI 1.8 gets a
    /// metric that goes nowhere, so plugins need not check.
    public func registerMetric(_ name: String, help: String, kind: Metric.Kind) throws(PluginError) -> Metric {
        guard let register = api.pointee.metric_register, abiMinor >= 8 else { return Metric(services: self, handle: .max) }
        var handle: UInt32 = 0
        try check(register(host, name, help, kind.rawValue, &handle), "metric '\(name)'")
        return Metric(services: self, handle: handle)
    }

    /// Answers request `id` (one that `control` returned nil for), exactly once, from any thread.
    public func reply(to id: UInt64, _ reply: ControlReply) {
        guard let answer = api.pointee.control_reply, abiMinor >= 8 else { return }
        switch reply {
        case .success(let json):
            _ = json.withCString { answer(host, id, veneer_status(VENEER_OK), $0, strlen($0)) }
        case .failure(let why, let message):
            _ = message.withCString { answer(host, id, why.status, $0, strlen($0)) }
        }
    }

    /// The ABI minor version of the host that loaded the plugin.
    var abiMinor: UInt16 { api.pointee.abi_minor }
}
