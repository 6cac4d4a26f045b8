import ICProtocol
import VeneerIC
import VeneerPluginKit

/// Device state, version 1: the pools, the queue, the daemon and retry flags, then the endpoint.
/// Strings are UTF-8 byte strings; everything read is checked by the same rules as the API
/// (`KVPPools.validate`), so a state file cannot smuggle in what a guest could not.
extension KVP {
    static let stateVersion: UInt32 = 1
    /// Longest UTF-8 form of a key (255 units) or value (1023 units): three bytes per unit.
    static let maximumKeyBytes = 3 * KVPExchangeValue.maximumKeyUnits
    static let maximumValueBytes = 3 * KVPExchangeValue.maximumValueUnits

    func save(to state: inout StateWriter) {
        for raw in UInt8(0)...4 {
            let pairs = pools.list(KVPPool(rawValue: raw))
            state.write(UInt16(pairs.count))
            for pair in pairs {
                Self.write(pair.key, to: &state)
                Self.write(pair.value, to: &state)
            }
        }
        state.write(UInt16(queue.count))
        for request in queue {
            switch request {
            case .push(let pool, let key, let value):
                state.write(UInt8(0)); state.write(pool.rawValue); Self.write(key, to: &state); Self.write(value, to: &state)
            case .remove(let pool, let key):
                state.write(UInt8(1)); state.write(pool.rawValue); Self.write(key, to: &state)
            case .enumerate(let pool, let index):
                state.write(UInt8(2)); state.write(pool.rawValue); state.write(index)
            case .fetch(let pool, let key):
                state.write(UInt8(3)); state.write(pool.rawValue); Self.write(key, to: &state)
            }
        }
        state.write(daemonAnswered)
        state.write(waitingRetry)
        state.write(reportedNotReady)
        endpoint.save(to: &state)
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == Self.stateVersion else { throw StateError("KVP state version \(version) is unknown (this plugin writes 1)") }
        var loaded = KVPPools()
        for raw in UInt8(0)...4 {
            let count = Int(try state.read(UInt16.self))
            guard count <= KVPPools.maximumPairs else { throw StateError("KVP state: pool \(raw) has \(count) pairs, more than \(KVPPools.maximumPairs)") }
            for _ in 0..<count {
                let key = try Self.read(&state, max: Self.maximumKeyBytes, what: "a key")
                let value = try Self.read(&state, max: Self.maximumValueBytes, what: "a value")
                do { try loaded.set(KVPPool(rawValue: raw), key, value) } catch { throw StateError("KVP state: \(error)") }
            }
        }
        let count = Int(try state.read(UInt16.self))
        // At most one exchange per key of the two host pools, plus the enumerations and fetches.
        guard count <= 4 * KVPPools.maximumPairs else { throw StateError("KVP state: \(count) queued exchanges is too many") }
        var loadedQueue: [KVPRequest] = []
        for _ in 0..<count {
            let kind: UInt8 = try state.read()
            let pool = KVPPool(rawValue: try state.read())
            guard pool.rawValue <= 4 else { throw StateError("KVP state: pool \(pool.rawValue) does not exist") }
            switch kind {
            case 0:
                let key = try Self.read(&state, max: Self.maximumKeyBytes, what: "a key")
                let value = try Self.read(&state, max: Self.maximumValueBytes, what: "a value")
                do { try KVPPools.validate(key: key, value: value) } catch { throw StateError("KVP state: \(error)") }
                loadedQueue.append(.push(pool, key: key, value: value))
            case 1, 3:
                let key = try Self.read(&state, max: Self.maximumKeyBytes, what: "a key")
                do { try KVPPools.validate(key: key, value: "") } catch { throw StateError("KVP state: \(error)") }
                loadedQueue.append(kind == 1 ? .remove(pool, key: key) : .fetch(pool, key: key))
            case 2:
                let index: UInt32 = try state.read()
                guard index < UInt32(KVPPools.maximumPairs) else { throw StateError("KVP state: enumeration index \(index) is out of range") }
                loadedQueue.append(.enumerate(pool, index: index))
            default:
                throw StateError("KVP state: unknown exchange kind \(kind)")
            }
        }
        let answered = try state.readBool(), waiting = try state.readBool(), reported = try state.readBool()
        var endpoint = self.endpoint
        try endpoint.load(from: &state)
        try state.finish()
        self.endpoint = endpoint
        pools = loaded
        queue = loadedQueue
        daemonAnswered = answered
        waitingRetry = waiting
        reportedNotReady = reported
        endpoint.resumeTimers()
        host.cancelTimer(token: Token.retry)
        if waitingRetry { host.armTimer(token: Token.retry, deadline: host.now &+ retry) }
    }

    private static func write(_ text: String, to state: inout StateWriter) {
        state.write(bytes: Array(text.utf8))
    }

    private static func read(_ state: inout StateReader, max: Int, what: String) throws(StateError) -> String {
        let bytes = try state.readBytes(maxCount: max)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw StateError("KVP state: \(what) is not UTF-8")
        }
        return text
    }
}
