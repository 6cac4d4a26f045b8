import ICProtocol
import VeneerIC
import VeneerPluginKit

/// The answer to `{"op":"status"}`: what veneerd shows as the VM's heartbeat.
///
/// - `state`: "not-connected" (the guest has not opened the channel, or has not finished version
///   negotiation), "no-contact" (connected, but no heartbeat answered yet, or `lost_after` missed
///   in a row), "degraded" (answering, but the last heartbeat was missed, or the guest reports its
///   applications critical), "ok".
/// - `sequence`: the sequence number of the last heartbeat sent (0 before the first).
/// - `lastSeenMsAgo`: milliseconds since the guest last answered correctly; null if it has not
///   since the plugin started (or its state was loaded).
/// - `connection`, `sent`, `answered`, `missed`, `missedInARow`, `applicationState`: the details.
struct HeartbeatStatus: Encodable, Equatable {
    var state: String
    var sequence: UInt64
    var lastSeenMsAgo: UInt64?
    var connection: String
    var sent: UInt64
    var answered: UInt64
    var missed: UInt64
    var missedInARow: UInt32
    /// The guest's reported application state by name ("unknown" when it sends 0, as Linux
    /// does); null without a report.
    var applicationState: String?

    init(endpoint: ICEndpoint, monitor: HeartbeatMonitor, lastSequence: UInt64, lastSeenMsAgo: UInt64?) {
        let critical = monitor.applicationState == HeartbeatApplicationState.critical
        state = switch (endpoint.isReady, monitor.health) {
        case (false, _): "not-connected"
        case (true, .noContact), (true, .lost): "no-contact"
        case (true, .ok): monitor.consecutiveMisses > 0 || critical ? "degraded" : "ok"
        }
        sequence = lastSequence
        self.lastSeenMsAgo = lastSeenMsAgo
        connection = ICControl.connection(endpoint.phase)
        sent = monitor.sent
        answered = monitor.answered
        missed = monitor.missed
        missedInARow = monitor.consecutiveMisses
        applicationState = monitor.applicationState.map(HeartbeatApplicationState.name)
    }

    // Encoded explicitly so that a nil `lastSeenMsAgo`/`applicationState` is written as null
    // (the synthesized encoder leaves such members out).
    enum CodingKeys: String, CodingKey {
        case state, sequence, lastSeenMsAgo, connection, sent, answered, missed, missedInARow, applicationState
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(state, forKey: .state)
        try c.encode(sequence, forKey: .sequence)
        try c.encode(lastSeenMsAgo, forKey: .lastSeenMsAgo)
        try c.encode(connection, forKey: .connection)
        try c.encode(sent, forKey: .sent)
        try c.encode(answered, forKey: .answered)
        try c.encode(missed, forKey: .missed)
        try c.encode(missedInARow, forKey: .missedInARow)
        try c.encode(applicationState, forKey: .applicationState)
    }
}

/// The metrics heartbeat publishes (`veneer_device_heartbeat_*`).
struct HeartbeatMetrics {
    let sent: Metric
    let answered: Metric
    let missed: Metric
    /// The sequence number of the last heartbeat answered correctly.
    let sequence: Metric
    /// 0 no contact, 1 ok, 2 lost (`HeartbeatHealth`).
    let health: Metric

    init(host: HostServices) throws(PluginError) {
        sent = try host.registerMetric("heartbeat_sent_total", help: "heartbeats sent to the guest", kind: .counter)
        answered = try host.registerMetric("heartbeat_answered_total", help: "heartbeats the guest answered correctly", kind: .counter)
        missed = try host.registerMetric("heartbeat_missed_total", help: "heartbeats not answered correctly in time", kind: .counter)
        sequence = try host.registerMetric("heartbeat_sequence", help: "sequence number of the last heartbeat answered", kind: .gauge)
        health = try host.registerMetric("heartbeat_health", help: "guest health: 0 no contact, 1 ok, 2 lost", kind: .gauge)
    }

    func update(_ monitor: HeartbeatMonitor) { health.set(Int64(monitor.health.rawValue)) }
}
