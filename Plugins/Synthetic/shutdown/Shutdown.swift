import ICProtocol
import VeneerIC
import VeneerPluginKit

/// The shutdown integration service (a VSP): offers the shutdown channel Linux `hv_utils` binds
/// to, negotiates through the IC framework, then carries the host's requests (shut down, restart,
/// hibernate; force flag, reason code, a UTF-16 message). Linux answers before it acts, so the
/// answer's status is the outcome: S_OK means the guest is on its way; a failure status means it
/// will not (hibernation without S4, a flag combination it does not know).
///
/// Management (ABI 1.8): `{"op":"shutdown","action":...,"force":...,"reason":...}` sends one
/// request and is answered once the guest answered it (see `ShutdownControl`); members left out
/// take the instance's parameters.
final class Shutdown: ICDevice {
    /// Hyper-V's instance GUID for the shutdown channel (as OpenVMM offers it).
    static let instance = "b6650ff7-33bc-4840-8048-e0676786f393"

    /// Message versions offered, oldest first: 1.0, 3.0, 3.1, 3.2 (Linux prefers 3.2).
    static let profile = ICServiceProfile(name: "shutdown", messageType: .shutdown,
                                          messageVersions: [ICVersion(1, 0), ICVersion(3, 0), ICVersion(3, 1), ICVersion(3, 2)])

    enum Token {
        static let timeout: UInt64 = 2
        static let drain: UInt64 = 3
    }

    let host: HostServices
    /// The request's defaults: what a management request does not say.
    let configured: ShutdownRequest
    /// Nanoseconds the guest has to answer.
    let timeout: UInt64
    var endpoint: ICEndpoint
    /// The outcome of the last request that ended (nil: none yet).
    var lastOutcome: ShutdownOutcome?
    var requestsSent: UInt64 = 0
    /// The management request waiting for the guest's answer to the request in flight.
    var pendingReply: UInt64?
    let metrics: ShutdownMetrics

    init(host: HostServices, configured: ShutdownRequest, timeoutMilliseconds: Int64) throws(PluginError) {
        guard (100...600_000).contains(timeoutMilliseconds) else { throw PluginError("timeout_ms \(timeoutMilliseconds) is outside 100-600000") }
        self.host = host
        self.configured = configured
        timeout = UInt64(timeoutMilliseconds) * 1_000_000
        let channel = try ICEndpoint.offer(host: host, interfaceType: ICInterface.shutdown, instance: Self.instance)
        endpoint = ICEndpoint(host: host, channel: channel, profile: Self.profile,
                              tokens: ICEndpoint.Tokens(timeout: Token.timeout, drain: Token.drain))
        metrics = try ShutdownMetrics(host: host)
    }

    // MARK: the request API

    /// Sends `request` to the guest; its outcome is logged and kept in `lastOutcome` when the guest
    /// answers (or does not). Fails at once when the guest cannot take it, so the caller can fall
    /// back.
    func request(_ request: ShutdownRequest) -> Result<Void, ShutdownRequestError> {
        guard endpoint.isReady else { return .failure(.notReady("\(endpoint.phase)")) }
        guard endpoint.outstanding == nil else { return .failure(.busy) }
        switch endpoint.send(body: request.body, timeout: timeout, tag: UInt64(request.flags.rawValue)) {
        case .success:
            requestsSent &+= 1
            metrics.sent.add()
            host.log(.info, "shutdown: asked the guest to \(request.action.rawValue)\(request.force ? " (forced)" : "") with reason 0x\(String(request.reason, radix: 16))")
            return .success(())
        case .failure(.busy): return .failure(.busy)
        case .failure(.notReady): return .failure(.notReady("\(endpoint.phase)"))
        case .failure(let why): return .failure(.notSent("\(why)"))
        }
    }

    // MARK: lifecycle

    func reset() {
        endpoint.reset()
        lastOutcome = nil
        requestsSent = 0
        answerPending(.failure(.failed, message: "the VM was reset before the guest answered"))
    }

    func start() { endpoint.start() }
    func stop() { endpoint.stop() }
    func io(_ access: IOAccess, data: inout UInt64) {}

    // MARK: events

    func handle(_ events: [ICEvent]) {
        for event in events {
            switch event {
            case .negotiated, .negotiationFailed:
                break   // the framework logs both
            case .reply(let request, let frame):
                finish(request, frame.header.status == ICStatus.ok ? .accepted : .refused(status: frame.header.status))
            case .rejected(let request, let reason):
                finish(request, .unanswered(reason))
            case .timedOut(let request):
                finish(request, .unanswered("no answer within \(timeout / 1_000_000) ms"))
            case .closed:
                if lastOutcome == .accepted { host.log(.debug, "shutdown: the guest closed the channel after accepting") }
                answerPending(.failure(.failed, message: "the guest closed the shutdown channel without answering"))
            }
        }
    }

    private func finish(_ request: ICRequest, _ outcome: ShutdownOutcome) {
        lastOutcome = outcome
        let flags = ShutdownFlags(rawValue: UInt32(truncatingIfNeeded: request.tag))
        let action = flags.contains(.hibernate) ? "hibernate" : flags.contains(.restart) ? "restart" : "shutdown"
        switch outcome {
        case .accepted:
            metrics.accepted.add()
            host.log(.info, "shutdown: the guest accepted the \(action) request")
            answerPending(.done)
        case .refused(let status):
            metrics.refused.add()
            host.log(.warning, "shutdown: the guest refused the \(action) request (status 0x\(String(status, radix: 16)))")
            answerPending(.failure(.failed, message: "the guest refused the \(action) request (status 0x\(String(status, radix: 16)))"))
        case .unanswered(let why):
            metrics.unanswered.add()
            host.log(.warning, "shutdown: the guest did not answer the \(action) request: \(why)")
            answerPending(.failure(.failed, message: "the guest did not answer the \(action) request: \(why)"))
        }
    }

    // MARK: state

    func save(to state: inout StateWriter) {
        state.write(requestsSent)
        switch lastOutcome {
        case nil: state.write(UInt8(0)); state.write(UInt32(0))
        case .accepted?: state.write(UInt8(1)); state.write(UInt32(0))
        case .refused(let status)?: state.write(UInt8(2)); state.write(status)
        case .unanswered?: state.write(UInt8(3)); state.write(UInt32(0))
        }
        endpoint.save(to: &state)
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("shutdown state version \(version) is unknown (this plugin writes 1)") }
        let sent: UInt64 = try state.read()
        let kind: UInt8 = try state.read()
        let status: UInt32 = try state.read()
        let outcome: ShutdownOutcome?
        switch kind {
        case 0: outcome = nil
        case 1: outcome = .accepted
        case 2: outcome = .refused(status: status)
        case 3: outcome = .unanswered("before the state was saved")
        default: throw StateError("shutdown state: unknown outcome \(kind)")
        }
        var endpoint = self.endpoint
        try endpoint.load(from: &state)
        try state.finish()
        self.endpoint = endpoint
        requestsSent = sent
        lastOutcome = outcome
        // A management request does not survive a save: its caller is not state.
        answerPending(.failure(.failed, message: "the device's state was replaced before the guest answered"))
        endpoint.resumeTimers()
    }
}
