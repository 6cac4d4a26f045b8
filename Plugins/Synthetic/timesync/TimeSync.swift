import ICProtocol
import VeneerIC
import VeneerPluginKit

/// The time-sync integration service (a VSP): offers the time-sync channel Linux `hv_utils`
/// binds to, negotiates through the IC framework, sends a SYNC right away (the guest sets its
/// clock) and then a SAMPLE every `interval_ms` (Linux keeps it for its "hyperv" PTP clock). A SYNC
/// is sent again whenever the service starts with the channel ready (resume, restore), because
/// the guest's clock stood still meanwhile, and when the VM resumes from a pause (ABI 1.8
/// `run_state`).
///
/// Management (ABI 1.8): `{"op":"sync"}` sends a SYNC now (after the answer to a message in
/// flight) and is answered `{}` once it is sent; `.notNow` before the guest connected.
///
/// Each message carries the host's CLOCK_REALTIME as FILETIME and, from version 4.0, the
/// partition reference counter at that instant, read from the core (ABI 1.5) — the counter the
/// guest reads, never a second clock — so the guest corrects for the message's delay itself.
final class TimeSync: ICDevice {
    /// Hyper-V's instance GUID for the time-sync channel (as OpenVMM offers it).
    static let instance = "2dd1ce17-079e-403c-b352-a1921ee207ee"

    /// Message versions offered, oldest first: 1.0 and 3.0 (no reference time), 4.0 (with it).
    static let profile = ICServiceProfile(name: "timesync", messageType: .timeSync,
                                          messageVersions: [ICVersion(1, 0), ICVersion(3, 0), ICVersion(4, 0)])

    enum Token {
        static let sample: UInt64 = 1
        static let timeout: UInt64 = 2
        static let drain: UInt64 = 3
    }

    let host: HostServices
    /// Nanoseconds between samples.
    let interval: UInt64
    var endpoint: ICEndpoint
    var stats = TimeSyncStats()
    /// A SYNC waits for the channel (or for the outstanding request) and goes out first.
    var syncDue = false
    var running = false
    /// Management requests answered once the next SYNC is sent.
    var syncRequests: [UInt64] = []
    let metrics: TimeSyncMetrics

    /// How long the guest has to answer: 3/4 of the interval.
    var replyTimeout: UInt64 { interval - interval / 4 }

    init(host: HostServices, intervalMilliseconds: Int64) throws(PluginError) {
        guard (1000...300_000).contains(intervalMilliseconds) else {
            throw PluginError("interval_ms \(intervalMilliseconds) is outside 1000-300000")
        }
        guard host.referenceTime() != nil else {
            throw PluginError("timesync needs the partition reference time: an enlightened VM (hyperv = true) and a host with plugin ABI 1.5")
        }
        self.host = host
        interval = UInt64(intervalMilliseconds) * 1_000_000
        let channel = try ICEndpoint.offer(host: host, interfaceType: ICInterface.timeSync, instance: Self.instance)
        endpoint = ICEndpoint(host: host, channel: channel, profile: Self.profile,
                              tokens: ICEndpoint.Tokens(timeout: Token.timeout, drain: Token.drain))
        metrics = try TimeSyncMetrics(host: host)
    }

    // MARK: management (ABI 1.8)

    func control(_ request: ControlRequest) -> ControlReply? {
        guard request.op == "sync" else { return ICControl.unknownOp(request, service: "timesync", ops: ["sync"]) }
        guard running, endpoint.isReady else { return ICControl.notConnected(endpoint) }
        syncRequests.append(request.id)
        syncDue = true
        sendDue()
        return nil   // answered when the SYNC goes out (`answerSyncRequests`)
    }

    /// Resumed from a pause: the guest's clock stood still while its vCPUs did.
    func runStateChanged(_ state: RunState) {
        guard state == .resumed, running, endpoint.isReady else { return }
        syncDue = true
        sendDue()
    }

    private func answerSyncRequests(_ reply: ControlReply) {
        let waiting = syncRequests
        syncRequests = []
        for id in waiting { host.reply(to: id, reply) }
    }

    // MARK: lifecycle

    func reset() {
        host.cancelTimer(token: Token.sample)
        endpoint.reset()
        stats = TimeSyncStats()
        syncDue = false
        answerSyncRequests(.failure(.failed, message: "the VM was reset before the SYNC was sent"))
    }

    func start() {
        running = true
        endpoint.start()
        if endpoint.isReady {
            syncDue = true   // resumed: the guest's clock stood still while we were stopped
            sendDue()
        }
        scheduleSamples()
    }

    func stop() {
        running = false
        endpoint.stop()
        host.cancelTimer(token: Token.sample)
    }

    func io(_ access: IOAccess, data: inout UInt64) {}

    // MARK: events

    func serviceTimerFired(token: UInt64) {
        if token == Token.sample { send(syncDue ? .sync : .sample) }   // a SYNC that could not go yet goes first
    }

    func handle(_ events: [ICEvent]) {
        for event in events {
            switch event {
            case .negotiated:
                syncDue = true
                scheduleSamples()
                sendDue()
            case .negotiationFailed:
                break   // logged by the framework; nothing is sent until the guest reopens
            case .reply(let request, let frame):
                if frame.header.status == ICStatus.ok {
                    stats.answered &+= 1
                    host.log(.debug, "timesync: message \(request.packetID) answered")
                } else {
                    stats.failedStatus &+= 1
                    host.log(.debug, "timesync: the guest answered message \(request.packetID) with status 0x\(String(frame.header.status, radix: 16))")
                }
                sendDue()
            case .rejected(let request, let reason):
                stats.unanswered &+= 1
                host.log(.debug, "timesync: unusable answer to message \(request.packetID): \(reason)")
                sendDue()
            case .timedOut(let request):
                stats.unanswered &+= 1
                metrics.unanswered.add()
                host.log(.debug, "timesync: message \(request.packetID) not answered within \(replyTimeout / 1_000_000) ms")
                sendDue()
            case .closed:
                host.cancelTimer(token: Token.sample)
                syncDue = false
                answerSyncRequests(.failure(.notNow, message: "the guest closed the timesync channel before the SYNC was sent"))
            }
        }
    }

    // MARK: messages

    private func scheduleSamples() {
        guard running, endpoint.isReady else {
            host.cancelTimer(token: Token.sample)
            return
        }
        host.armTimer(token: Token.sample, deadline: host.now &+ interval, period: interval)
    }

    /// Sends the SYNC that is due, if any, once nothing is outstanding.
    private func sendDue() {
        guard syncDue, running, endpoint.isReady, endpoint.outstanding == nil else { return }
        send(.sync)
    }

    private func send(_ flags: TimeSyncFlags) {
        guard running, case .ready(_, let version) = endpoint.phase else { return }
        guard endpoint.outstanding == nil else {
            // One transaction at a time; a missed sample is harmless, a SYNC waits for the answer.
            if flags.contains(.sample) { stats.skipped &+= 1 }
            return
        }
        guard let point = TimePoint.now(host) else {
            stats.skipped &+= 1
            host.log(.warning, "timesync: no partition reference time or wall clock; nothing sent")
            return
        }
        let message = TimeSyncMessage(parentTime: point.fileTime,
                                      referenceTime: TimeSyncMessage.usesReferenceLayout(version) ? point.referenceTime : nil,
                                      flags: flags)
        switch endpoint.send(body: message.encode(), timeout: replyTimeout, tag: UInt64(flags.rawValue)) {
        case .success:
            if flags.contains(.sync) {
                syncDue = false
                stats.syncs &+= 1
                metrics.syncs.add()
                host.log(.debug, "timesync: sent SYNC (host time \(point.fileTime), reference \(point.referenceTime))")
                answerSyncRequests(.done)
            } else {
                stats.samples &+= 1
                metrics.samples.add()
            }
        case .failure(let why):
            stats.skipped &+= 1
            metrics.skipped.add()
            host.log(.debug, "timesync: \(flags.contains(.sync) ? "SYNC" : "SAMPLE") not sent: \(why)")
        }
    }

    // MARK: state

    func save(to state: inout StateWriter) {
        stats.save(to: &state)
        endpoint.save(to: &state)
    }

    /// After a restore the guest's clock is wherever the snapshot left it: a SYNC follows at once
    /// when the channel was ready (sent when the VM starts again).
    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("timesync state version \(version) is unknown (this plugin writes 1)") }
        var stats = TimeSyncStats()
        try stats.load(from: &state)
        var endpoint = self.endpoint
        try endpoint.load(from: &state)
        try state.finish()
        self.endpoint = endpoint
        self.stats = stats
        answerSyncRequests(.failure(.failed, message: "the device's state was replaced before the SYNC was sent"))
        syncDue = endpoint.isReady
        endpoint.resumeTimers()
        scheduleSamples()
        sendDue()
    }
}

/// The metrics timesync publishes (`veneer_device_timesync_*`).
struct TimeSyncMetrics {
    let syncs: Metric
    let samples: Metric
    let unanswered: Metric
    let skipped: Metric

    init(host: HostServices) throws(PluginError) {
        syncs = try host.registerMetric("timesync_syncs_total", help: "SYNC messages sent (the guest sets its clock)", kind: .counter)
        samples = try host.registerMetric("timesync_samples_total", help: "SAMPLE messages sent", kind: .counter)
        unanswered = try host.registerMetric("timesync_unanswered_total", help: "messages the guest did not answer in time", kind: .counter)
        skipped = try host.registerMetric("timesync_skipped_total", help: "messages due but not sent (one in flight, full ring, no clock)", kind: .counter)
    }
}

/// What the service sent and how the guest answered. All wrap on overflow.
struct TimeSyncStats: Equatable, Sendable {
    var syncs: UInt64 = 0
    var samples: UInt64 = 0
    var answered: UInt64 = 0
    var failedStatus: UInt64 = 0
    /// Timed out or unusable answers.
    var unanswered: UInt64 = 0
    /// Messages due that could not be sent (a request outstanding, full ring, no clock).
    var skipped: UInt64 = 0

    static let fieldCount = 6

    func save(to state: inout StateWriter) {
        for v in [syncs, samples, answered, failedStatus, unanswered, skipped] { state.write(v) }
    }

    mutating func load(from state: inout StateReader) throws(StateError) {
        var f: [UInt64] = []
        for _ in 0..<Self.fieldCount { f.append(try state.read()) }
        self = TimeSyncStats(syncs: f[0], samples: f[1], answered: f[2], failedStatus: f[3], unanswered: f[4], skipped: f[5])
    }
}
