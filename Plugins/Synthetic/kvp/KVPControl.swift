import ICProtocol
import VeneerIC
import VeneerPluginKit

/// Management requests (ABI 1.8). Pools are named as Linux's daemon names its files: "external"
/// (host to guest: users' pairs), "guest" (guest to host), "auto" (the guest's intrinsic data: OS
/// name and version, addresses), "auto-external" (the host's intrinsic data), "auto-internal"
/// (guest-local, never sent to the host: always empty here).
///
/// - `{"op":"get","pool":P,"key":K}` → `{"value":V}`: `.invalid` for an unknown pool or a key the
///   pool lacks; for a guest pool, `.notNow` while the guest's daemon has not answered (or the
///   guest is not connected) and the key is not known yet.
/// - `{"op":"list","pool":P}` → `{"items":[{"key":K,"value":V}]}` (a guest pool likewise `.notNow`
///   before the daemon answered). Reading a guest pool also asks the guest for it again, so a
///   later read sees what changed (Hyper-V polls it the same way).
/// - `{"op":"set","key":K,"value":V}` → `{}`: the external pool ("pool", if given, must be
///   "external"); the guest gets it now, or when it next connects.
/// - `{"op":"delete","key":K}` → `{}`: from the external pool, here and in the guest; `.invalid`
///   when the key is not there.
struct KVPControlRequest: Decodable {
    var op: String
    var pool: String?
    var key: String?
    var value: String?
}

struct KVPItems: Encodable {
    struct Item: Encodable {
        var key: String
        var value: String
    }
    var items: [Item]
}

struct KVPValue: Encodable {
    var value: String
}

extension KVP {
    static let ops = ["get", "set", "delete", "list"]
    static let poolNames: [String: KVPPool] = [
        "external": .external, "guest": .guest, "auto": .auto, "auto-external": .autoExternal, "auto-internal": .autoInternal,
    ]

    func control(_ request: ControlRequest) -> ControlReply? {
        guard Self.ops.contains(request.op) else { return ICControl.unknownOp(request, service: "kvp", ops: Self.ops) }
        let body: KVPControlRequest
        do { body = try ICControl.decode(request, as: KVPControlRequest.self) } catch { return error.reply }
        metrics.requests.add()
        switch request.op {
        case "get":
            guard let key = body.key else { return Self.missing("key") }
            return pool(named: body.pool).map { get($0, key) } ?? Self.badPool(body.pool)
        case "list":
            return pool(named: body.pool).map { list($0) } ?? Self.badPool(body.pool)
        case "set":
            guard let key = body.key else { return Self.missing("key") }
            guard let value = body.value else { return Self.missing("value") }
            guard body.pool == nil || body.pool == "external" else { return Self.notWritable(body.pool) }
            do { try set(key, value) } catch { return .failure(.invalid, message: error.description) }
            return .done
        default:   // "delete"
            guard let key = body.key else { return Self.missing("key") }
            guard body.pool == nil || body.pool == "external" else { return Self.notWritable(body.pool) }
            do { try delete(key) } catch { return .failure(.invalid, message: error.description) }
            return .done
        }
    }

    private func pool(named name: String?) -> KVPPool? { name.flatMap { Self.poolNames[$0] } }

    private func get(_ pool: KVPPool, _ key: String) -> ControlReply {
        if Self.learnedPools.contains(pool) { refresh(pool) }
        if let value = pools.get(pool, key) { return .encoding(KVPValue(value: value)) }
        if let notYet = notLearnedYet(pool) { return notYet }
        return .failure(.invalid, message: "the \(pool) pool has no key '\(key.prefix(255))'")
    }

    private func list(_ pool: KVPPool) -> ControlReply {
        if Self.learnedPools.contains(pool) {
            refresh(pool)
            if pools.list(pool).isEmpty, let notYet = notLearnedYet(pool) { return notYet }
        }
        return .encoding(KVPItems(items: pools.list(pool).map { KVPItems.Item(key: $0.key, value: $0.value) }))
    }

    /// `.notNow` while the host cannot know a guest pool yet: not connected, or its daemon silent.
    private func notLearnedYet(_ pool: KVPPool) -> ControlReply? {
        guard Self.learnedPools.contains(pool) else { return nil }
        guard endpoint.isReady else { return ICControl.notConnected(endpoint) }
        guard daemonAnswered else {
            return .failure(.notNow, message: "the guest's KVP daemon has not answered yet, so its \(pool) pool is unknown")
        }
        return nil
    }

    /// Asks the guest for `pool` again unless a read of it is already on the way.
    private func refresh(_ pool: KVPPool) {
        let reading = queue.contains { if case .enumerate(let p, _) = $0 { p == pool } else { false } }
        if !reading { enqueue(.enumerate(pool, index: 0)) }
    }

    private static func missing(_ member: String) -> ControlReply {
        .failure(.invalid, message: "kvp: missing member '\(member)'")
    }

    private static func badPool(_ name: String?) -> ControlReply {
        guard let name else { return missing("pool") }
        return .failure(.invalid, message: "member 'pool': '\(name.prefix(64))' is not one of \(poolNames.keys.sorted().joined(separator: ", "))")
    }

    private static func notWritable(_ name: String?) -> ControlReply {
        .failure(.invalid, message: "member 'pool': only the external pool is written from the host, not '\((name ?? "").prefix(64))'")
    }
}

/// The metrics kvp publishes (`veneer_device_kvp_*`).
struct KVPMetrics {
    /// Management requests taken (get, set, delete, list).
    let requests: Metric
    /// Exchanges the guest's daemon answered.
    let exchanges: Metric
    /// 1 once the guest's daemon has answered since the channel opened, else 0.
    let daemon: Metric

    init(host: HostServices) throws(PluginError) {
        requests = try host.registerMetric("kvp_requests_total", help: "management requests (get, set, delete, list)", kind: .counter)
        exchanges = try host.registerMetric("kvp_exchanges_total", help: "KVP exchanges the guest's daemon answered", kind: .counter)
        daemon = try host.registerMetric("kvp_daemon_running", help: "1 once the guest's KVP daemon answered since the channel opened", kind: .gauge)
    }
}
