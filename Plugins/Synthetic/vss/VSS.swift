import ICProtocol
import VeneerIC
import VeneerPluginKit

/// The VSS (backup) integration service, a VSP. A backup is the Hyper-V sequence HOT_BACKUP ("can
/// you?"), FREEZE, the host's work while the guest's file systems are frozen, THAW, BU_COMPLETE.
/// Linux's `hv_utils` answers HOT_BACKUP, FREEZE and THAW with HV_E_FAIL until `hv_vss_daemon`
/// registers, and other operations itself (GET_DM_INFO with flags 0); only message version 5.0.
///
/// Every step has a timeout (FREEZE gets Linux's own 15 minutes and a margin), a failed or
/// unanswered FREEZE is followed by a THAW (a partly frozen guest is undone), and a guest is never
/// left frozen longer than `maximumFrozen`: the plugin thaws it itself. Nothing waits: each answer
/// (or timeout) moves the sequence on.
///
/// Management (ABI 1.8, `VSSControl.swift`): "freeze" runs HOT_BACKUP and FREEZE and is answered
/// once the guest is frozen; "thaw" runs THAW and BU_COMPLETE; "check" reports where it stands.
/// The save path calls `freezeThenThaw`.
final class VSS: ICDevice {
    /// Linux binds VSS by interface type alone; Hyper-V's own instance GUID was not confirmed,
    /// so Veneer uses this fixed one.
    static let instance = "276414f5-7c54-4409-bbee-c8b9d2e156e7"
    static let profile = ICServiceProfile(name: "VSS", messageType: .vss, messageVersions: [ICVersion(5, 0)])

    enum Token {
        static let timeout: UInt64 = 2
        static let drain: UInt64 = 3
        /// The guest has been frozen too long: thaw it.
        static let frozenLimit: UInt64 = 4
    }

    struct Timeouts {
        var request: UInt64
        var freeze: UInt64
        var maximumFrozen: UInt64
        init(request: Int64, freeze: Int64, maximumFrozen: Int64) {
            self.request = UInt64(max(request, 1)) * 1_000_000
            self.freeze = UInt64(max(freeze, 1)) * 1_000_000
            self.maximumFrozen = UInt64(max(maximumFrozen, 1)) * 1_000_000
        }
    }

    /// Where a backup stands.
    enum Phase: Equatable {
        case idle
        case checking, freezing, frozen, thawing, completing
    }

    /// What `backup(whileFrozen:)` reports once the guest is frozen, or why it is not.
    enum FreezeOutcome: Equatable {
        case frozen
        case failed(String)
    }

    enum RequestError: Error, Equatable, CustomStringConvertible {
        case notReady(String)
        case busy
        case notSent(String)
        var description: String {
            switch self {
            case .notReady(let phase): "the VSS channel is not ready (\(phase))"
            case .busy: "a backup or request is in progress"
            case .notSent(let why): "the request was not sent: \(why)"
            }
        }
    }

    let host: HostServices
    let timeouts: Timeouts
    var endpoint: ICEndpoint
    var phase: Phase = .idle
    /// Called once the guest is frozen (or the freeze failed); the caller then calls `thaw()`.
    var onFrozen: ((FreezeOutcome) -> Void)?
    /// Outcome of the last backup (nil: none yet), for the management service.
    var lastOutcome: String?
    /// What the backup in progress will report when it ends, when not plain success.
    var result: String?
    /// The management request a "thaw" waits with, answered when the backup ends.
    var thawRequest: UInt64?
    let metrics: VSSMetrics

    init(host: HostServices, timeouts: Timeouts) throws(PluginError) {
        self.host = host
        self.timeouts = timeouts
        let channel = try ICEndpoint.offer(host: host, interfaceType: ICInterface.vss, instance: Self.instance)
        endpoint = ICEndpoint(host: host, channel: channel, profile: Self.profile,
                              tokens: ICEndpoint.Tokens(timeout: Token.timeout, drain: Token.drain))
        metrics = try VSSMetrics(host: host)
    }

    // MARK: the internal API

    /// Starts a backup: HOT_BACKUP then FREEZE. `onFrozen` is called once with `.frozen` (do the
    /// work, then call `thaw()`; after `maximumFrozen` the plugin thaws anyway) or `.failed`.
    func backup(whileFrozen onFrozen: @escaping (FreezeOutcome) -> Void) -> Result<Void, RequestError> {
        guard endpoint.isReady else { return .failure(.notReady("\(endpoint.phase)")) }
        guard phase == .idle, endpoint.outstanding == nil else { return .failure(.busy) }
        if case .failure(let why) = send(.hotBackup) { return .failure(why) }
        self.onFrozen = onFrozen
        phase = .checking
        return .success(())
    }

    /// Freezes the guest, runs `work` while it is frozen, thaws it: the save path's call.
    func freezeThenThaw(_ work: @escaping (FreezeOutcome) -> Void) -> Result<Void, RequestError> {
        backup { [weak self] outcome in
            work(outcome)
            if outcome == .frozen { self?.thaw() }
        }
    }

    /// Thaws a frozen guest (THAW, then BU_COMPLETE). Does nothing unless frozen.
    func thaw() {
        guard phase == .frozen else { return }
        host.cancelTimer(token: Token.frozenLimit)
        phase = .thawing
        if case .failure(let why) = send(.thaw) {
            if result == nil { result = "backup failed: the guest could not be told to thaw: \(why)" }
            finish()
        }
    }

    private func send(_ operation: VSSOperation) -> Result<Void, RequestError> {
        let timeout = operation == .freeze ? timeouts.freeze : timeouts.request
        switch endpoint.send(body: VSSMessage(operation: operation).encode(), timeout: timeout, tag: UInt64(operation.rawValue)) {
        case .success:
            host.log(.debug, "VSS: sent \(operation)")
            return .success(())
        case .failure(.busy): return .failure(.busy)
        case .failure(.notReady): return .failure(.notReady("\(endpoint.phase)"))
        case .failure(let why): return .failure(.notSent("\(why)"))
        }
    }

    // MARK: lifecycle

    func reset() {
        endpoint.reset()
        host.cancelTimer(token: Token.frozenLimit)
        phase = .idle
        let callback = onFrozen
        onFrozen = nil
        lastOutcome = nil
        result = nil
        callback?(.failed("the VM was reset"))
        answerThaw(.failure(.failed, message: "the VM was reset before the guest thawed"))
        metrics.frozen.set(0)
    }

    func start() {
        endpoint.start()
        if phase == .frozen { host.armTimer(token: Token.frozenLimit, deadline: host.now &+ timeouts.maximumFrozen) }
    }

    func stop() {
        endpoint.stop()
        host.cancelTimer(token: Token.frozenLimit)
    }

    func io(_ access: IOAccess, data: inout UInt64) {}

    func serviceTimerFired(token: UInt64) {
        guard token == Token.frozenLimit, phase == .frozen else { return }
        host.log(.warning, "VSS: the guest was frozen for \(timeouts.maximumFrozen / 1_000_000) ms; thawing it")
        thaw()
    }

    // MARK: events

    func handle(_ events: [ICEvent]) {
        for event in events {
            switch event {
            case .negotiated:
                // Ask what Linux answers without its daemon: shows the channel works end to end.
                if phase == .idle, case .failure(let why) = send(.getDMInfo) {
                    host.log(.warning, "VSS: GET_DM_INFO not sent: \(why)")
                }
            case .negotiationFailed:
                break
            case .reply(let request, let frame):
                let operation = VSSOperation(rawValue: UInt8(truncatingIfNeeded: request.tag))
                let flags = (try? VSSMessage.decode(frame.body[...]))?.flags
                answered(operation, status: frame.header.status, flags: flags)
            case .rejected(let request, let reason):
                unanswered(VSSOperation(rawValue: UInt8(truncatingIfNeeded: request.tag)), "unusable answer: \(reason)")
            case .timedOut(let request):
                let operation = VSSOperation(rawValue: UInt8(truncatingIfNeeded: request.tag))
                let limit = operation == .freeze ? timeouts.freeze : timeouts.request
                unanswered(operation, "no answer within \(limit / 1_000_000) ms")
            case .closed:
                host.cancelTimer(token: Token.frozenLimit)
                guard phase != .idle else { break }
                if result == nil { result = "backup failed: the guest closed the channel during the backup" }
                let callback = onFrozen
                onFrozen = nil
                finish()
                callback?(.failed("the guest closed the channel"))
            }
        }
    }

    private func status(_ value: UInt32) -> String { "status 0x\(String(value, radix: 16))" }

    private func answered(_ operation: VSSOperation, status value: UInt32, flags: UInt32?) {
        let ok = value == ICStatus.ok
        switch (operation, phase) {
        case (.getDMInfo, _):
            host.log(.info, ok ? "VSS: the guest answers (GET_DM_INFO flags 0x\(String(flags ?? 0, radix: 16)))"
                               : "VSS: the guest refused GET_DM_INFO (\(status(value)))")
        case (.hotBackup, .checking):
            guard ok else {
                return fail("the guest cannot take a backup (HOT_BACKUP \(status(value)); Linux answers so without hv_vss_daemon)")
            }
            phase = .freezing
            if case .failure(let why) = send(.freeze) { fail("FREEZE not sent: \(why)") }
        case (.freeze, .freezing):
            guard ok else { return undoFreeze("the guest did not freeze (\(status(value)))") }
            phase = .frozen
            metrics.freezes.add()
            metrics.frozen.set(1)
            host.armTimer(token: Token.frozenLimit, deadline: host.now &+ timeouts.maximumFrozen)
            let callback = onFrozen
            onFrozen = nil
            callback?(.frozen)
        case (.thaw, .thawing):
            if !ok { host.log(.warning, "VSS: the guest did not thaw (\(status(value)))") }
            completeBackup(thawed: ok)
        case (.backupComplete, .completing):
            finish()
        default:
            host.log(.debug, "VSS: ignored an answer to \(operation) in phase \(phase)")
        }
    }

    private func unanswered(_ operation: VSSOperation, _ why: String) {
        switch (operation, phase) {
        case (.hotBackup, .checking): fail("HOT_BACKUP: \(why)")
        case (.freeze, .freezing): undoFreeze("FREEZE: \(why)")
        case (.thaw, .thawing):
            host.log(.warning, "VSS: THAW: \(why)")
            completeBackup(thawed: false)
        case (.backupComplete, .completing): finish()
        default: host.log(.warning, "VSS: \(operation): \(why)")
        }
    }

    /// A FREEZE failed or went unanswered: thaw whatever did freeze, then report the failure.
    private func undoFreeze(_ why: String) {
        let callback = onFrozen
        onFrozen = nil
        result = "backup failed: \(why)"
        host.log(.warning, "VSS: \(why); thawing")
        phase = .thawing
        if case .failure = send(.thaw) { finish() }
        callback?(.failed(why))
    }

    private func completeBackup(thawed: Bool) {
        metrics.frozen.set(0)
        if !thawed && result == nil { result = "backup complete, but the guest did not confirm the thaw" }
        phase = .completing
        if case .failure = send(.backupComplete) { finish() }
    }

    private func fail(_ why: String) {
        let callback = onFrozen
        onFrozen = nil
        result = "backup failed: \(why)"
        finish()
        callback?(.failed(why))
    }

    /// The backup ended: logged and kept in `lastOutcome`.
    private func finish() {
        let outcome = result ?? "backup complete"
        host.log(result == nil ? .info : .warning, "VSS: \(outcome)")
        if result != nil { metrics.failures.add() }
        answerThaw(result == nil ? .encoding(VSSState(state: "thawed", lastOutcome: outcome)) : .failure(.failed, message: outcome))
        lastOutcome = outcome
        result = nil
        phase = .idle
        metrics.frozen.set(0)
    }

    // MARK: state

    func save(to state: inout StateWriter) {
        let phases: [Phase] = [.idle, .checking, .freezing, .frozen, .thawing, .completing]
        state.write(UInt8(phases.firstIndex(of: phase) ?? 0))
        endpoint.save(to: &state)
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("VSS state version \(version) is unknown (this plugin writes 1)") }
        let phases: [Phase] = [.idle, .checking, .freezing, .frozen, .thawing, .completing]
        let index = Int(try state.read(UInt8.self))
        guard index < phases.count else { throw StateError("VSS state: unknown backup phase \(index)") }
        var endpoint = self.endpoint
        try endpoint.load(from: &state)
        try state.finish()
        self.endpoint = endpoint
        // A caller's callback does not survive a save; a loaded frozen guest is thawed by the limit timer.
        phase = phases[index]
        let callback = onFrozen
        onFrozen = nil
        callback?(.failed("the device's state was replaced"))
        answerThaw(.failure(.failed, message: "the device's state was replaced before the guest thawed"))
        metrics.frozen.set(phase == .frozen ? 1 : 0)
        endpoint.resumeTimers()
        host.cancelTimer(token: Token.frozenLimit)
        if phase == .frozen { host.armTimer(token: Token.frozenLimit, deadline: host.now &+ timeouts.maximumFrozen) }
    }
}
