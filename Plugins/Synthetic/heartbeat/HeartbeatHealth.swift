import VeneerPluginKit

/// What the host knows about the guest from its heartbeats.
enum HeartbeatHealth: UInt8, Sendable, CustomStringConvertible {
    /// No answer yet since the channel opened (or the channel is closed).
    case noContact = 0
    /// The last heartbeat was answered correctly.
    case ok = 1
    /// `lost_after` heartbeats in a row went unanswered or were answered wrongly.
    case lost = 2

    var description: String {
        switch self {
        case .noContact: "no contact"
        case .ok: "ok"
        case .lost: "lost"
        }
    }
}

/// Health bookkeeping, apart from the channel: answers and misses in, transitions out.
struct HeartbeatMonitor: Equatable, Sendable {
    /// Misses in a row that make a guest lost.
    let lostAfter: UInt32

    private(set) var health = HeartbeatHealth.noContact
    private(set) var consecutiveMisses: UInt32 = 0
    /// Heartbeats sent, answered correctly, and missed (timed out, wrong answer, not sendable).
    var sent: UInt64 = 0
    private(set) var answered: UInt64 = 0
    private(set) var missed: UInt64 = 0
    /// Of the misses: answers with the wrong sequence number, and answers with a failure status.
    var wrongSequence: UInt64 = 0
    var failedStatus: UInt64 = 0
    /// The application state the guest last reported (Linux leaves 0, unknown).
    private(set) var applicationState: UInt32?

    init(lostAfter: UInt32) { self.lostAfter = lostAfter }

    /// A correct answer: returns the previous health when it changed.
    mutating func recordAnswer(applicationState state: UInt32?) -> HeartbeatHealth? {
        answered &+= 1
        applicationState = state
        consecutiveMisses = 0
        return change(to: .ok)
    }

    /// A heartbeat that did not get a correct answer: returns the previous health when it changed.
    mutating func recordMiss() -> HeartbeatHealth? {
        missed &+= 1
        consecutiveMisses &+= 1
        return consecutiveMisses >= lostAfter ? change(to: .lost) : nil
    }

    /// The channel closed or the service stopped: no contact, misses forgotten.
    mutating func recordDisconnect() -> HeartbeatHealth? {
        consecutiveMisses = 0
        return change(to: .noContact)
    }

    private mutating func change(to new: HeartbeatHealth) -> HeartbeatHealth? {
        guard health != new else { return nil }
        defer { health = new }
        return health
    }

    // MARK: state

    func save(to state: inout StateWriter) {
        state.write(health.rawValue)
        state.write(consecutiveMisses)
        for count in [sent, answered, missed, wrongSequence, failedStatus] { state.write(count) }
        state.write(applicationState != nil)
        state.write(applicationState ?? 0)
    }

    /// Reads what `save` wrote; `self` changes only when it is valid.
    mutating func load(from state: inout StateReader) throws(StateError) {
        guard let health = HeartbeatHealth(rawValue: try state.read()) else { throw StateError("heartbeat state: unknown health") }
        let misses: UInt32 = try state.read()
        var counts: [UInt64] = []
        for _ in 0..<5 { counts.append(try state.read()) }
        let hasState = try state.readBool()
        let applicationState: UInt32 = try state.read()
        guard hasState || applicationState == 0 else { throw StateError("heartbeat state: application state without a report") }
        guard health != .lost || misses > 0 else { throw StateError("heartbeat state: lost without a miss") }
        self.health = health
        consecutiveMisses = misses
        sent = counts[0]; answered = counts[1]; missed = counts[2]; wrongSequence = counts[3]; failedStatus = counts[4]
        self.applicationState = hasState ? applicationState : nil
    }
}
