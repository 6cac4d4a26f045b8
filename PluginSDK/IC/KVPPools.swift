import ICProtocol

/// The KVP pools as the host keeps them: what it gives the guest (the external pool, users'
/// pairs; the auto-external pool, the host's intrinsic data) and what it learned from the guest
/// (the guest and auto pools). Kept in the KVP plugin so a management API can read and set them;
/// the same size rules as the wire: keys at most 255 UTF-16 code units, values at most 1023 (each
/// with its NUL in 512 / 2048 bytes), keys non-empty and without NUL. Keys compare exactly (Linux's
/// daemon compares with strcmp). Insertion order is kept, as the guest's pool files keep it.
public struct KVPPools: Equatable, Sendable {
    /// Pairs per pool, each pool bounded (Linux's daemon grows its files without limit; a host
    /// must not let a guest grow its memory without limit).
    public static let maximumPairs = 1024

    public struct Pair: Equatable, Sendable {
        public var key: String
        public var value: String
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        case emptyKey
        case keyTooLong(units: Int)
        case valueTooLong(key: String, units: Int)
        case containsNUL(String)
        case poolFull(KVPPool)
        case notWritable(KVPPool)
        case noSuchKey(KVPPool, String)

        public var description: String {
            switch self {
            case .emptyKey: "a KVP key must not be empty"
            case .keyTooLong(let n): "a KVP key of \(n) UTF-16 code units is longer than \(KVPExchangeValue.maximumKeyUnits)"
            case .valueTooLong(let key, let n): "the value of KVP key '\(key)' has \(n) UTF-16 code units, more than \(KVPExchangeValue.maximumValueUnits)"
            case .containsNUL(let what): "\(what) contains a NUL character"
            case .poolFull(let pool): "the \(pool) pool already holds \(KVPPools.maximumPairs) pairs"
            case .notWritable(let pool): "the \(pool) pool cannot be written through this call"
            case .noSuchKey(let pool, let key): "the \(pool) pool has no key '\(key)'"
            }
        }
    }

    private var pools: [UInt8: [Pair]] = [:]

    public init() {}

    /// Checks that `key` and `value` fit a KVP message.
    public static func validate(key: String, value: String) throws(Failure) {
        let keyUnits = key.utf16.count, valueUnits = value.utf16.count
        guard keyUnits > 0 else { throw .emptyKey }
        guard keyUnits <= KVPExchangeValue.maximumKeyUnits else { throw .keyTooLong(units: keyUnits) }
        guard !key.utf16.contains(0) else { throw .containsNUL("KVP key '\(key.prefix(40))'") }
        guard valueUnits <= KVPExchangeValue.maximumValueUnits else { throw .valueTooLong(key: key, units: valueUnits) }
        guard !value.utf16.contains(0) else { throw .containsNUL("the value of KVP key '\(key)'") }
    }

    public func get(_ pool: KVPPool, _ key: String) -> String? {
        pools[pool.rawValue]?.first { $0.key == key }?.value
    }

    public func list(_ pool: KVPPool) -> [Pair] { pools[pool.rawValue] ?? [] }

    /// Sets `key` in `pool` (replacing its value in place); returns whether anything changed.
    @discardableResult
    public mutating func set(_ pool: KVPPool, _ key: String, _ value: String) throws(Failure) -> Bool {
        try Self.validate(key: key, value: value)
        var pairs = pools[pool.rawValue] ?? []
        if let i = pairs.firstIndex(where: { $0.key == key }) {
            guard pairs[i].value != value else { return false }
            pairs[i].value = value
        } else {
            guard pairs.count < Self.maximumPairs else { throw .poolFull(pool) }
            pairs.append(Pair(key: key, value: value))
        }
        pools[pool.rawValue] = pairs
        return true
    }

    /// Removes `key` from `pool`.
    public mutating func delete(_ pool: KVPPool, _ key: String) throws(Failure) {
        guard var pairs = pools[pool.rawValue], let i = pairs.firstIndex(where: { $0.key == key }) else {
            throw .noSuchKey(pool, key)
        }
        pairs.remove(at: i)
        pools[pool.rawValue] = pairs
    }

    /// Empties `pool` (a guest pool is learned again from scratch).
    public mutating func clear(_ pool: KVPPool) { pools[pool.rawValue] = nil }

    /// Every non-empty pool, by number.
    public var nonEmptyPools: [KVPPool] { pools.filter { !$0.value.isEmpty }.keys.sorted().map { KVPPool(rawValue: $0) } }
}
