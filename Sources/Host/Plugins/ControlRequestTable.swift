import Synchronization
import VeneerPluginABI

/// Management requests (ABI 1.8) waiting for a device's control_reply. Each is answered once:
/// by the device, or by `expire` after its deadline (the device's late reply is then refused).
public final class ControlRequestTable: Sendable {
    public struct Answer: Sendable, Equatable {
        public let status: veneer_status
        /// The JSON result (`status` ok) or a one-line message.
        public let text: String
        public init(status: veneer_status, text: String) {
            self.status = status
            self.text = text
        }
    }

    private struct Pending {
        let deadline: UInt64
        let completion: @Sendable (Answer) -> Void
    }

    private let pending = Mutex<[UInt64: Pending]>([:])
    private let nextID = Atomic<UInt64>(1)

    public init() {}

    /// A new request id; `completion` runs exactly once, on the thread that answers.
    public func begin(deadline: UInt64, completion: @escaping @Sendable (Answer) -> Void) -> UInt64 {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        pending.withLock { $0[id] = Pending(deadline: deadline, completion: completion) }
        return id
    }

    public func answer(_ id: UInt64, status: veneer_status, text: String) -> veneer_status {
        guard let p = pending.withLock({ $0.removeValue(forKey: id) }) else { return .invalid }
        p.completion(Answer(status: status, text: text))
        return .ok
    }

    /// Answers every request whose deadline is at or before `now` with a timeout.
    public func expire(now: UInt64) {
        let due = pending.withLock { p -> [Pending] in
            let ids = p.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { p.removeValue(forKey: $0) }
        }
        for p in due { p.completion(Answer(status: veneer_status(VENEER_EAGAIN), text: "the device did not answer in time")) }
    }

    public var isEmpty: Bool { pending.withLock { $0.isEmpty } }
}
