import FoundationEssentials
import Synchronization
import VeneerHost
import VeneerPluginABI

/// How a device answered a management request (ABI 1.8), as veneerd would map it.
public struct ControlOutcome: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// VENEER_OK: `text` is the JSON result.
        case success
        /// VENEER_EINVAL (HTTP 400), VENEER_EAGAIN (409), VENEER_ENOTSUP (501), VENEER_EIO (500).
        case invalid, notNow, unsupported, failed
        /// Any other status: a plugin bug the tests should see.
        case other(Int32)
    }

    public var kind: Kind
    /// The JSON result, or the failure's one-line message.
    public var text: String

    public init(kind: Kind, text: String) {
        self.kind = kind
        self.text = text
    }

    init(_ answer: ControlRequestTable.Answer) {
        text = answer.text
        kind = switch answer.status {
        case .ok: .success
        case .invalid: .invalid
        case .again: .notNow
        case .unsupported: .unsupported
        case .ioError: .failed
        default: .other(answer.status)
        }
    }

    public var isSuccess: Bool { kind == .success }
    public var description: String { "\(kind): \(text)" }
}

/// One request's answer, filled in by whichever thread the device answers on.
final class ControlAnswerSlot: Sendable {
    let answer = Mutex<ControlOutcome?>(nil)
    /// Answers after the first: the ABI says exactly once, so a test can assert none arrived.
    let extra = Atomic<Int>(0)
}

extension PluginHarness {
    // MARK: management requests (ABI 1.8; the test plays veneerd)

    /// Sends management request `json` (a JSON object text) as veneerd would and returns its id.
    /// A device answers now or later (after the guest answered); read it with `controlAnswer(_:)`.
    /// A plugin without a `control` callback is answered VENEER_ENOTSUP, as the worker does.
    @discardableResult
    public func sendControl(_ json: String) -> UInt64 {
        let slot = ControlAnswerSlot()
        let id = host.controlRequests.begin(deadline: .max) { answer in
            let first = slot.answer.withLock { a -> Bool in
                guard a == nil else { return false }
                a = ControlOutcome(answer)
                return true
            }
            if !first { slot.extra.add(1, ordering: .relaxed) }
        }
        host.rememberControl(id, slot)
        if !device.control(request: id, json: json) {
            _ = host.controlRequests.answer(id, status: .unsupported, text: "this device takes no management requests")
        }
        deliverHostEvents()
        return id
    }

    /// The answer to request `id`, or nil while the device has not answered.
    public func controlAnswer(_ id: UInt64) -> ControlOutcome? { host.controlSlot(id)?.answer.withLock { $0 } }

    /// Sends `json` and returns the answer the device gave during the call (nil: it answers later).
    public func control(_ json: String) -> ControlOutcome? { controlAnswer(sendControl(json)) }

    /// Whether a device answered any request more than once (the host refuses such replies; the
    /// harness's table does too, so this stays 0 unless the plugin ignored the refusal).
    public var repeatedControlAnswers: Int { host.controlSlots.reduce(0) { $0 + $1.extra.load(ordering: .relaxed) } }

    /// Requests the device has not answered yet.
    public var pendingControlRequests: [UInt64] { host.controlIDs.filter { controlAnswer($0) == nil } }

    // MARK: metrics and run state

    /// The value of the metric the device registered as `name` (nil: no such metric).
    public func metric(_ name: String) -> Int64? {
        host.metrics.samples().first { $0.definition.name == name }?.value
    }

    /// Every metric the device registered, by name.
    public var metrics: [String: Int64] {
        Dictionary(host.metrics.samples().map { ($0.definition.name, $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    /// The VM pauses (every vCPU out of the guest) or resumes, as the worker tells devices.
    public func setRunState(paused: Bool) {
        device.runStateChanged(UInt32(paused ? VENEER_RUN_PAUSED : VENEER_RUN_RESUMED))
        deliverHostEvents()
    }
}

extension ControlOutcome {
    /// A successful answer's JSON decoded as `T` (nil for a failure or JSON that does not fit):
    /// tests compare results by value, since JSON member order is not part of an answer.
    public func decoded<T: Decodable>(_ type: T.Type) -> T? {
        guard kind == .success else { return nil }
        return try? JSONDecoder().decode(T.self, from: Data(text.utf8))
    }
}
