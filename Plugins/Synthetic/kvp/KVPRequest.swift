import ICProtocol

/// One exchange the host has queued for the guest.
enum KVPRequest: Equatable, Sendable {
    /// Gives the guest a pair (external or auto-external pool).
    case push(KVPPool, key: String, value: String)
    /// Removes a pair the host gave the guest.
    case remove(KVPPool, key: String)
    /// Reads the item at `index` of a guest pool (the guest answers HV_S_CONT past the end).
    case enumerate(KVPPool, index: UInt32)
    /// Reads one key of a guest pool.
    case fetch(KVPPool, key: String)

    /// The message, or nil when a string does not fit (the pools never hold such strings).
    var message: KVPMessage? {
        func pair(_ key: String, _ value: String) -> KVPExchangeValue? { KVPExchangeValue(key: key, string: value) }
        switch self {
        case .push(let pool, let key, let value): return pair(key, value).map { KVPMessage(pool: pool, body: .set($0)) }
        case .remove(let pool, let key):
            let units = Array(key.utf16)
            return units.count <= KVPExchangeValue.maximumKeyUnits ? KVPMessage(pool: pool, body: .delete(key: units)) : nil
        case .enumerate(let pool, let index):
            return pair("", "").map { KVPMessage(pool: pool, body: .enumerate(index: index, $0)) }
        case .fetch(let pool, let key): return pair(key, "").map { KVPMessage(pool: pool, body: .get($0)) }
        }
    }

    var pool: KVPPool {
        switch self {
        case .push(let p, _, _), .remove(let p, _), .enumerate(let p, _), .fetch(let p, _): p
        }
    }

    var description: String {
        switch self {
        case .push(let pool, let key, _): "SET of '\(key)' in the \(pool) pool"
        case .remove(let pool, let key): "DELETE of '\(key)' in the \(pool) pool"
        case .enumerate(let pool, let index): "ENUMERATE of the \(pool) pool at \(index)"
        case .fetch(let pool, let key): "GET of '\(key)' in the \(pool) pool"
        }
    }
}
