import ICProtocol
import VeneerIC
import VeneerPluginKit

/// The heartbeat integration service (a VSP): offers the heartbeat channel that Linux `hv_utils`
/// (and Windows' heartbeat service) binds to, negotiates versions through the IC framework, then
/// sends a heartbeat every `interval_ms` and expects `seq_num + 1` back. From the answers it keeps
/// the guest's health: no contact, ok, or lost after `lost_after` misses in a row.
///
/// A miss is a heartbeat without a correct answer before 3/4 of the interval has passed (so it is
/// settled before the next one is due): no answer, a wrong sequence number, a failure status, an
/// unusable answer, or a full ring that took no heartbeat at all.
final class Heartbeat: ICDevice {
    /// The channel's instance GUID. Fixed, so a guest sees the same device on every boot; chosen
    /// for Veneer (no public Hyper-V value is known, and Linux matches only the interface type).
    /// Its last group spells "Heart" in ASCII.
    static let instance = "9c3a9e7e-5f6b-4f2a-8d0c-4865617274be"

    /// Heartbeat message versions offered: 1.0 (Windows Server 2008 guests) and 3.0.
    static let profile = ICServiceProfile(name: "heartbeat", messageType: .heartbeat,
                                          messageVersions: [ICVersion(1, 0), ICVersion(3, 0)])

    enum Token {
        static let beat: UInt64 = 1
        static let timeout: UInt64 = 2
        static let drain: UInt64 = 3
    }

    let host: HostServices
    /// Nanoseconds between heartbeats.
    let interval: UInt64
    var endpoint: ICEndpoint
    var monitor: HeartbeatMonitor
    /// The sequence number of the next heartbeat.
    var nextSequence: UInt64 = 0
    var running = false
    /// The host clock when the guest last answered a heartbeat correctly (not state: a loaded
    /// instance has not seen the guest yet).
    var lastAnswerTime: UInt64?
    let metrics: HeartbeatMetrics

    /// How long the guest has to answer: 3/4 of the interval.
    var replyTimeout: UInt64 { interval - interval / 4 }

    init(host: HostServices, intervalMilliseconds: Int64, lostAfter: Int64) throws(PluginError) {
        guard (100...60_000).contains(intervalMilliseconds) else { throw PluginError("interval_ms \(intervalMilliseconds) is outside 100-60000") }
        guard (1...100).contains(lostAfter) else { throw PluginError("lost_after \(lostAfter) is outside 1-100") }
        self.host = host
        interval = UInt64(intervalMilliseconds) * 1_000_000
        let channel = try ICEndpoint.offer(host: host, interfaceType: ICInterface.heartbeat, instance: Self.instance)
        endpoint = ICEndpoint(host: host, channel: channel, profile: Self.profile,
                              tokens: ICEndpoint.Tokens(timeout: Token.timeout, drain: Token.drain))
        monitor = HeartbeatMonitor(lostAfter: UInt32(lostAfter))
        metrics = try HeartbeatMetrics(host: host)
    }

    // MARK: management (ABI 1.8)

    /// `{"op":"status"}`: see `HeartbeatStatus`. Always answerable, even before the guest connects.
    func control(_ request: ControlRequest) -> ControlReply? {
        guard request.op == "status" else { return ICControl.unknownOp(request, service: "heartbeat", ops: ["status"]) }
        return .encoding(status)
    }

    var status: HeartbeatStatus {
        HeartbeatStatus(endpoint: endpoint, monitor: monitor, lastSequence: nextSequence == 0 ? 0 : nextSequence &- 1,
                        lastSeenMsAgo: lastAnswerTime.map { (host.now &- $0) / 1_000_000 })
    }

    // MARK: lifecycle

    func reset() {
        host.cancelTimer(token: Token.beat)
        endpoint.reset()
        monitor = HeartbeatMonitor(lostAfter: monitor.lostAfter)
        nextSequence = 0
        lastAnswerTime = nil
        metrics.update(monitor)
    }

    func start() {
        running = true
        endpoint.start()
        scheduleBeats()
    }

    func stop() {
        running = false
        endpoint.stop()
        host.cancelTimer(token: Token.beat)
    }

    func io(_ access: IOAccess, data: inout UInt64) {}

    // MARK: events

    func serviceTimerFired(token: UInt64) {
        if token == Token.beat { beat() }
    }

    func handle(_ events: [ICEvent]) {
        for event in events {
            switch event {
            case .negotiated:
                scheduleBeats()
                beat()
            case .negotiationFailed:
                break   // the framework logged why; no heartbeats until the guest reopens
            case .reply(let request, let frame):
                check(answer: frame, to: request)
            case .rejected(let request, let reason):
                miss(sequence: request.tag, reason)
            case .timedOut(let request):
                miss(sequence: request.tag, "no answer within \(replyTimeout / 1_000_000) ms")
            case .closed:
                host.cancelTimer(token: Token.beat)
                let tally = "\(monitor.sent) sent, \(monitor.answered) answered, \(monitor.missed) missed so far"
                if let old = monitor.recordDisconnect() { transition(from: old, "the channel closed (\(tally))") }
                metrics.update(monitor)
            }
        }
    }

    // MARK: heartbeats

    private func scheduleBeats() {
        guard running, endpoint.isReady else {
            host.cancelTimer(token: Token.beat)
            return
        }
        host.armTimer(token: Token.beat, deadline: host.now &+ interval, period: interval)
    }

    private func beat() {
        guard endpoint.isReady else { return }
        guard endpoint.outstanding == nil else {
            host.log(.debug, "heartbeat: the previous heartbeat is still outstanding; none sent")
            return
        }
        let sequence = nextSequence
        nextSequence &+= 1
        switch endpoint.send(body: HeartbeatMessage(sequenceNumber: sequence).encode(), timeout: replyTimeout, tag: sequence) {
        case .success:
            monitor.sent &+= 1
            metrics.sent.add()
            host.log(.debug, "heartbeat: sent heartbeat \(sequence)")
        case .failure(let why):
            miss(sequence: sequence, "not sent: \(why)")
        }
    }

    private func check(answer frame: ICFrame, to request: ICRequest) {
        let sequence = request.tag
        guard frame.header.status == ICStatus.ok else {
            monitor.failedStatus &+= 1
            return miss(sequence: sequence, "the guest answered with status 0x\(String(frame.header.status, radix: 16))")
        }
        let answer: HeartbeatMessage
        do { answer = try HeartbeatMessage.decode(frame.body[...]) } catch {
            return miss(sequence: sequence, "\(error)")
        }
        guard answer.sequenceNumber == sequence &+ 1 else {
            monitor.wrongSequence &+= 1
            return miss(sequence: sequence, "the guest answered sequence number \(answer.sequenceNumber), expected \(sequence &+ 1)")
        }
        let state = answer.applicationState.map(HeartbeatApplicationState.name) ?? "not reported"
        host.log(.debug, "heartbeat: heartbeat \(sequence) answered (application state \(state))")
        lastAnswerTime = host.now
        metrics.answered.add()
        metrics.sequence.set(Int64(truncatingIfNeeded: sequence))
        if let old = monitor.recordAnswer(applicationState: answer.applicationState) {
            transition(from: old, "heartbeat \(sequence) answered")
        }
        metrics.update(monitor)
    }

    private func miss(sequence: UInt64, _ reason: String) {
        host.log(.debug, "heartbeat: heartbeat \(sequence) missed: \(reason)")
        metrics.missed.add()
        if let old = monitor.recordMiss() {
            transition(from: old, "\(monitor.consecutiveMisses) heartbeats in a row missed, the last: \(reason)")
        }
        metrics.update(monitor)
    }

    private func transition(from old: HeartbeatHealth, _ why: String) {
        host.log(.info, "heartbeat: guest health \(old) -> \(monitor.health): \(why)")
    }

    // MARK: state

    func save(to state: inout StateWriter) {
        state.write(nextSequence)
        monitor.save(to: &state)
        endpoint.save(to: &state)
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("heartbeat state version \(version) is unknown (this plugin writes 1)") }
        let sequence: UInt64 = try state.read()
        var monitor = HeartbeatMonitor(lostAfter: self.monitor.lostAfter)
        try monitor.load(from: &state)
        var endpoint = self.endpoint
        try endpoint.load(from: &state)
        try state.finish()
        guard endpoint.isReady || monitor.health == .noContact else {
            throw StateError("heartbeat state: health \(monitor.health) while the channel is \(endpoint.phase)")
        }
        self.endpoint = endpoint
        self.monitor = monitor
        nextSequence = sequence
        lastAnswerTime = nil
        metrics.update(monitor)
        endpoint.resumeTimers()
        scheduleBeats()
    }
}
