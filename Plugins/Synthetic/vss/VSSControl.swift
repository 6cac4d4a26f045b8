import VeneerIC
import VeneerPluginKit

/// Management requests (ABI 1.8):
/// - `{"op":"freeze"}` → `{"state":"frozen"}` once the guest froze its file systems (HOT_BACKUP,
///   then FREEZE); `.failed` when it cannot (Linux without `hv_vss_daemon`) or did not, a failed
///   FREEZE being undone with a THAW. The guest stays frozen until "thaw" or `max_frozen_ms`.
/// - `{"op":"thaw"}` → `{"state":"thawed"}` once THAW and BU_COMPLETE are done; `.notNow` when
///   the guest is not frozen.
/// - `{"op":"check"}` → `{"state":S,"lastOutcome":text|null}`: S is "not-connected" or the
///   backup's phase ("idle", "checking", "freezing", "frozen", "thawing", "completing").
/// Freeze and thaw are `.notNow` before the guest connected or while another step runs.
struct VSSState: Encodable {
    var state: String
    var lastOutcome: String?

    enum CodingKeys: String, CodingKey { case state, lastOutcome }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(state, forKey: .state)
        try c.encode(lastOutcome, forKey: .lastOutcome)   // null when there is none
    }
}

extension VSS {
    static let ops = ["freeze", "thaw", "check"]

    func control(_ request: ControlRequest) -> ControlReply? {
        switch request.op {
        case "check":
            return .encoding(VSSState(state: endpoint.isReady ? "\(phase)" : "not-connected", lastOutcome: lastOutcome))
        case "freeze":
            guard endpoint.isReady else { return ICControl.notConnected(endpoint) }
            let id = request.id
            let started = backup { [weak self] outcome in
                guard let self else { return }
                switch outcome {
                case .frozen:
                    host.log(.info, "VSS: the guest's file systems are frozen")
                    host.reply(to: id, .encoding(VSSState(state: "frozen", lastOutcome: lastOutcome)))
                case .failed(let why):
                    host.reply(to: id, .failure(.failed, message: "the guest did not freeze: \(why)"))
                }
            }
            switch started {
            case .success: return nil   // answered by the callback
            case .failure(.notReady): return ICControl.notConnected(endpoint)
            case .failure(.busy): return .failure(.notNow, message: "a backup step is in progress (\(phase))")
            case .failure(let why): return .failure(.failed, message: why.description)
            }
        case "thaw":
            guard endpoint.isReady else { return ICControl.notConnected(endpoint) }
            guard phase == .frozen, thawRequest == nil else {
                return .failure(.notNow, message: "the guest is not frozen (the backup is \(phase))")
            }
            thawRequest = request.id
            thaw()
            return nil   // answered when the backup ends (`finish`)
        default:
            return ICControl.unknownOp(request, service: "vss", ops: Self.ops)
        }
    }

    /// Answers a waiting "thaw".
    func answerThaw(_ reply: ControlReply) {
        guard let id = thawRequest else { return }
        thawRequest = nil
        host.reply(to: id, reply)
    }
}

extension VSS.Phase: CustomStringConvertible {
    var description: String {
        switch self {
        case .idle: "idle"
        case .checking: "checking"
        case .freezing: "freezing"
        case .frozen: "frozen"
        case .thawing: "thawing"
        case .completing: "completing"
        }
    }
}

/// The metrics vss publishes (`veneer_device_vss_*`).
struct VSSMetrics {
    let freezes: Metric
    let failures: Metric
    /// 1 while the guest's file systems are frozen.
    let frozen: Metric

    init(host: HostServices) throws(PluginError) {
        freezes = try host.registerMetric("vss_freezes_total", help: "times the guest froze its file systems", kind: .counter)
        failures = try host.registerMetric("vss_failed_backups_total", help: "backups that failed or ended without a confirmed thaw", kind: .counter)
        frozen = try host.registerMetric("vss_frozen", help: "1 while the guest's file systems are frozen", kind: .gauge)
    }
}
