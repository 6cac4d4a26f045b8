import ICProtocol
import VeneerIC
import VeneerPluginKit

/// The KVP (data exchange) integration service, a VSP. After negotiation it gives the guest the
/// host's pairs (the auto-external pool: host name, VM name and id; the external pool: the
/// configured and API-set pairs) with SET, then learns the guest's pools by ENUMERATE, index by
/// index until the guest answers HV_S_CONT: first the auto pool (OS name and version, addresses,
/// as Hyper-V reads it), then the guest pool.
///
/// Linux answers through its user-space daemon: until `hv_kvp_daemon` registers, `hv_utils`
/// answers every KVP request with HV_E_FAIL (and the newest kernels do not even read the ring
/// for up to 55 s). So HV_E_FAIL before the guest ever answered anything else means "daemon not
/// running": the request stays at the head of the queue and is sent again every `retry` ns on the
/// plugin's own timer; nothing waits. Once the daemon has answered, HV_E_FAIL is that request's
/// failure (Linux's daemon answers it for a DELETE of a missing key, for example) and the queue
/// moves on.
///
/// The pools live here (`KVPPools`); management requests (ABI 1.8, `KVPControl.swift`) read and
/// set them. A guest pool is read again whenever a request reads it, and the new view replaces
/// the old one only once the enumeration is complete, so a reader never sees a half-read pool.
final class KVP: ICDevice {
    /// Hyper-V's instance GUID for the KVP channel (as OpenVMM offers it).
    static let instance = "242ff919-07db-4180-9c2e-b86cb68c8c55"

    /// Message versions offered, oldest first (Linux prefers 4.0). Negotiation may be answered
    /// only after Linux's 55 s delay when its daemon is late: warn after 60 s, keep waiting.
    static let profile = ICServiceProfile(name: "KVP", messageType: .kvpExchange,
                                          messageVersions: [ICVersion(3, 0), ICVersion(4, 0), ICVersion(5, 0)],
                                          negotiationTimeout: 60_000_000_000)

    enum Token {
        static let timeout: UInt64 = 2
        static let drain: UInt64 = 3
        static let retry: UInt64 = 4
    }

    /// The guest pools the host learns, in the order Hyper-V reads them.
    static let learnedPools: [KVPPool] = [.auto, .guest]

    let host: HostServices
    let retry: UInt64
    let timeout: UInt64
    var endpoint: ICEndpoint
    var pools: KVPPools
    /// Exchanges still to make; the head is the one in flight while `endpoint.outstanding` is set.
    var queue: [KVPRequest] = []
    /// The guest answered something other than HV_E_FAIL since negotiation: its daemon runs.
    var daemonAnswered = false
    /// The retry timer is armed; nothing is sent until it fires.
    var waitingRetry = false
    /// "Not running yet" was logged for this negotiation.
    var reportedNotReady = false
    /// A guest pool being enumerated, until its last item (then it replaces `pools`' view).
    var staged = KVPPools()
    let metrics: KVPMetrics

    init(host: HostServices, pools: KVPPools, retryMilliseconds: Int64, timeoutMilliseconds: Int64) throws(PluginError) {
        guard (100...600_000).contains(retryMilliseconds) else { throw PluginError("retry_ms \(retryMilliseconds) is outside 100-600000") }
        guard (100...600_000).contains(timeoutMilliseconds) else { throw PluginError("timeout_ms \(timeoutMilliseconds) is outside 100-600000") }
        self.host = host
        self.pools = pools
        retry = UInt64(retryMilliseconds) * 1_000_000
        timeout = UInt64(timeoutMilliseconds) * 1_000_000
        let channel = try ICEndpoint.offer(host: host, interfaceType: ICInterface.kvp, instance: Self.instance)
        endpoint = ICEndpoint(host: host, channel: channel, profile: Self.profile,
                              tokens: ICEndpoint.Tokens(timeout: Token.timeout, drain: Token.drain))
        metrics = try KVPMetrics(host: host)
    }

    // MARK: the internal API (for the management service)

    /// A value of any pool: the host's (external, auto-external) or one learned from the guest.
    func get(_ pool: KVPPool, _ key: String) -> String? { pools.get(pool, key) }

    func list(_ pool: KVPPool) -> [KVPPools.Pair] { pools.list(pool) }

    /// Sets a pair of the external pool and gives it to the guest (now if the channel is ready,
    /// else after the next negotiation).
    func set(_ key: String, _ value: String) throws(KVPPools.Failure) {
        guard try pools.set(.external, key, value) else { return }
        enqueue(.push(.external, key: key, value: value))
    }

    /// Removes a pair of the external pool, here and in the guest.
    func delete(_ key: String) throws(KVPPools.Failure) {
        try pools.delete(.external, key)
        enqueue(.remove(.external, key: key))
    }

    /// Reads the guest's pools again (Hyper-V refreshes its view of the auto pool the same way).
    func refreshGuestPools() {
        for pool in Self.learnedPools { enqueue(.enumerate(pool, index: 0)) }
    }

    /// Asks the guest for one key of one of its pools; the answer updates `pools`.
    func fetch(_ pool: KVPPool, _ key: String) throws(KVPPools.Failure) {
        try KVPPools.validate(key: key, value: "")
        enqueue(.fetch(pool, key: key))
    }

    // MARK: lifecycle

    func reset() {
        endpoint.reset()
        host.cancelTimer(token: Token.retry)
        for pool in Self.learnedPools { pools.clear(pool); staged.clear(pool) }
        metrics.daemon.set(0)
        queue = []
        daemonAnswered = false
        waitingRetry = false
        reportedNotReady = false
    }

    func start() {
        endpoint.start()
        if waitingRetry { host.armTimer(token: Token.retry, deadline: host.now &+ retry) }
    }

    func stop() {
        endpoint.stop()
        host.cancelTimer(token: Token.retry)
    }

    func io(_ access: IOAccess, data: inout UInt64) {}

    // MARK: the queue

    /// The exchanges after negotiation: the host's pools to the guest, then the guest's pools read.
    var initialQueue: [KVPRequest] {
        [KVPPool.autoExternal, .external].flatMap { pool in pools.list(pool).map { KVPRequest.push(pool, key: $0.key, value: $0.value) } }
            + Self.learnedPools.map { .enumerate($0, index: 0) }
    }

    /// Adds `request` unless an equal one waits; a newer push or delete of the same key replaces
    /// a waiting one (so the queue never holds more than one exchange per key).
    func enqueue(_ request: KVPRequest) {
        guard endpoint.isReady else { return }   // negotiation sends the whole state anyway
        let inFlight = endpoint.outstanding != nil ? 1 : 0
        func sameKey(_ other: KVPRequest) -> Bool {
            switch (other, request) {
            case (.push(let p, let k, _), .push(let q, let l, _)), (.push(let p, let k, _), .remove(let q, let l)),
                 (.remove(let p, let k), .push(let q, let l, _)), (.remove(let p, let k), .remove(let q, let l)):
                return p == q && k == l
            default: return other == request
            }
        }
        if queue.count > inFlight { queue[inFlight...].removeAll(where: sameKey) }
        queue.append(request)
        pump()
    }

    /// Sends the head of the queue when nothing is in flight.
    private func pump() {
        while endpoint.isReady, endpoint.outstanding == nil, !waitingRetry, let next = queue.first {
            guard let message = next.message else {
                host.log(.warning, "KVP: dropped the \(next.description): it does not fit a KVP message")
                queue.removeFirst()
                continue
            }
            switch endpoint.send(body: message.encode(), timeout: timeout) {
            case .success: return
            case .failure(.ringFull): return   // the guest's next signal drains and pumps again
            case .failure(let why):
                host.log(.warning, "KVP: cannot send the \(next.description): \(why); retrying in \(retry / 1_000_000) ms")
                armRetry()
                return
            }
        }
    }

    private func armRetry() {
        waitingRetry = true
        host.armTimer(token: Token.retry, deadline: host.now &+ retry)
    }

    func serviceTimerFired(token: UInt64) {
        guard token == Token.retry, waitingRetry else { return }
        waitingRetry = false
        pump()
    }

    // MARK: events

    func handle(_ events: [ICEvent]) {
        for event in events {
            switch event {
            case .negotiated:
                queue = initialQueue
                daemonAnswered = false
                metrics.daemon.set(0)
                reportedNotReady = false
                waitingRetry = false
                host.cancelTimer(token: Token.retry)
            case .negotiationFailed:
                break   // the framework logs it
            case .reply(_, let frame):
                answered(status: frame.header.status, body: frame.body)
            case .rejected(_, let reason):
                guard let head = queue.first else { break }
                host.log(.warning, "KVP: unusable answer to the \(head.description): \(reason)")
                finish(head)
            case .timedOut:
                guard let head = queue.first else { break }
                host.log(.warning, "KVP: no answer to the \(head.description) within \(timeout / 1_000_000) ms; retrying in \(retry / 1_000_000) ms")
                armRetry()
            case .closed:
                queue = []
                waitingRetry = false
                host.cancelTimer(token: Token.retry)
            }
        }
        pump()
    }

    private func answered(status: UInt32, body: [UInt8]) {
        guard let head = queue.first else { return }
        if status == ICStatus.fail && !daemonAnswered {
            if !reportedNotReady {
                reportedNotReady = true
                host.log(.info, "KVP: the guest's KVP daemon is not running yet (HV_E_FAIL); retrying every \(retry / 1_000_000) ms")
            }
            armRetry()
            return
        }
        if !daemonAnswered { metrics.daemon.set(1) }
        daemonAnswered = true
        metrics.exchanges.add()
        switch head {
        case .enumerate(let pool, let index):
            if index == 0 { staged.clear(pool) }
            guard status == ICStatus.ok else {
                if status != ICStatus.noMoreItems {
                    host.log(.warning, "KVP: the guest ended the enumeration of its \(pool) pool at \(index) with status 0x\(String(status, radix: 16))")
                }
                return finish(head)
            }
            learn(pool, from: body, request: head, into: &staged)
            queue.removeFirst()
            if index + 1 < UInt32(KVPPools.maximumPairs) {
                queue.insert(.enumerate(pool, index: index + 1), at: 0)
            } else {
                host.log(.warning, "KVP: stopped reading the guest's \(pool) pool after \(KVPPools.maximumPairs) items")
                finishEnumeration(pool)
            }
        case .fetch(let pool, let key):
            if status == ICStatus.ok {
                learn(pool, from: body, request: head, into: &pools)
            } else {
                host.log(.info, "KVP: the guest's \(pool) pool has no '\(key)' (status 0x\(String(status, radix: 16)))")
            }
            queue.removeFirst()
        case .push, .remove:
            if status == ICStatus.ok {
                host.log(.info, "KVP: the guest took the \(head.description)")
            } else {
                host.log(.warning, "KVP: the guest refused the \(head.description) (status 0x\(String(status, radix: 16)))")
            }
            queue.removeFirst()
        }
    }

    /// Stores the pair a GET or ENUMERATE answer carries.
    private func learn(_ pool: KVPPool, from body: [UInt8], request: KVPRequest, into target: inout KVPPools) {
        let value: KVPExchangeValue
        do {
            switch try KVPMessage.decode(body[...]).body {
            case .enumerate(_, let v), .get(let v): value = v
            default: return host.log(.warning, "KVP: the answer to the \(request.description) is not one")
            }
        } catch {
            return host.log(.warning, "KVP: unusable answer to the \(request.description): \(error)")
        }
        guard !value.key.isEmpty else { return }   // Linux's daemon answers empty items for data it lacks
        do { try target.set(pool, value.keyString, value.valueText) } catch {
            host.log(.warning, "KVP: ignored an item of the guest's \(pool) pool: \(error)")
        }
    }

    /// The head ended without more to do.
    private func finish(_ head: KVPRequest) {
        queue.removeFirst()
        if case .enumerate(let pool, _) = head { finishEnumeration(pool) }
    }

    /// The enumeration of `pool` ended: what it read becomes the host's view of the pool.
    private func finishEnumeration(_ pool: KVPPool) {
        let pairs = staged.list(pool)
        staged.clear(pool)
        pools.clear(pool)
        for pair in pairs { _ = try? pools.set(pool, pair.key, pair.value) }   // validated when staged
        let shown = pairs.map { "\($0.key)=\($0.value.count > 64 ? String($0.value.prefix(64)) + "…" : $0.value)" }
        host.log(.info, "KVP: the guest's \(pool) pool holds \(pairs.count) items\(pairs.isEmpty ? "" : ": " + shown.joined(separator: "; "))")
    }
}
