import Synchronization

/// Hands every `VMEvent` to every subscribed stream; a stream that is dropped unsubscribes. A
/// subscriber that does not keep up loses its oldest events (bounded buffer), never stalls others.
final class EventBroadcaster: Sendable {
    static let bufferedEvents = 1024

    private let subscribers = Mutex<[UInt64: AsyncStream<VMEvent>.Continuation]>([:])
    private let nextID = Atomic<UInt64>(0)

    func subscribe() -> AsyncStream<VMEvent> {
        let (stream, continuation) = AsyncStream<VMEvent>.makeStream(bufferingPolicy: .bufferingNewest(Self.bufferedEvents))
        let id = nextID.add(1, ordering: .relaxed).newValue
        subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ event: VMEvent) {
        let targets = subscribers.withLock { Array($0.values) }
        for continuation in targets { continuation.yield(event) }
    }

    func finishAll() {
        let targets = subscribers.withLock { s in defer { s = [:] }; return Array(s.values) }
        for continuation in targets { continuation.finish() }
    }
}
