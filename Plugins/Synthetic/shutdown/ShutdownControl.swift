import VeneerIC
import VeneerPluginKit

/// `{"op":"shutdown","action":"shutdown"|"restart"|"hibernate","force":bool,"reason":str}`, every
/// member but "op" optional (the instance's `action`, `force` and `message` parameters fill them
/// in); "reason" is the message the guest shows, "reasonCode" (a u32) the request's reason code.
/// Answered `{}` once the guest accepted; `.notNow` before the guest connected or while a request
/// waits for its answer; `.failed` when the guest refused, did not answer or closed the channel.
struct ShutdownControlRequest: Decodable {
    var op: String
    var action: String?
    var force: Bool?
    var reason: String?
    var reasonCode: UInt32?
}

extension Shutdown {
    func control(_ request: ControlRequest) -> ControlReply? {
        guard request.op == "shutdown" else { return ICControl.unknownOp(request, service: "shutdown", ops: ["shutdown"]) }
        let body: ShutdownControlRequest
        do { body = try ICControl.decode(request, as: ShutdownControlRequest.self) } catch { return error.reply }
        var action = configured.action
        if let name = body.action {
            guard let chosen = ShutdownRequest.Action(rawValue: name) else {
                return .failure(.invalid, message: "member 'action': '\(name.prefix(64))' is not shutdown, restart or hibernate")
            }
            action = chosen
        }
        let message = body.reason.map { Array($0.utf16) } ?? configured.message
        guard let wanted = ShutdownRequest(action: action, force: body.force ?? configured.force,
                                           reason: body.reasonCode ?? configured.reason, message: message) else {
            return .failure(.invalid, message: "member 'reason': \(message.count) UTF-16 code units; at most 1024 fit a shutdown request")
        }
        guard pendingReply == nil else {
            return .failure(.notNow, message: "a shutdown request is still waiting for the guest's answer")
        }
        switch self.request(wanted) {
        case .success:
            pendingReply = request.id
            return nil   // answered with the guest's answer (`answerPending`)
        case .failure(.notReady):
            return ICControl.notConnected(endpoint)
        case .failure(.busy):
            return .failure(.notNow, message: ShutdownRequestError.busy.description)
        case .failure(let why):
            return .failure(.failed, message: why.description)
        }
    }

    /// Answers the management request waiting for the guest, if any.
    func answerPending(_ reply: ControlReply) {
        guard let id = pendingReply else { return }
        pendingReply = nil
        host.reply(to: id, reply)
    }
}

/// The metrics shutdown publishes (`veneer_device_shutdown_*`).
struct ShutdownMetrics {
    let sent: Metric
    let accepted: Metric
    let refused: Metric
    let unanswered: Metric

    init(host: HostServices) throws(PluginError) {
        sent = try host.registerMetric("shutdown_requests_total", help: "shutdown, restart and hibernate requests sent to the guest", kind: .counter)
        accepted = try host.registerMetric("shutdown_accepted_total", help: "requests the guest accepted", kind: .counter)
        refused = try host.registerMetric("shutdown_refused_total", help: "requests the guest refused", kind: .counter)
        unanswered = try host.registerMetric("shutdown_unanswered_total", help: "requests the guest did not answer in time or answered unusably", kind: .counter)
    }
}
