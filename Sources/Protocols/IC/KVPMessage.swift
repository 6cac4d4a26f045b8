/// KVP exchange (icmsgtype 2), Linux include/uapi/linux/hyperv.h `hv_kvp_msg`: a 4-byte header
/// `{u8 operation; u8 pool; u16 pad}` and an operation-specific body at offset 4. (The IP-info
/// operations use a packed 2-byte header instead: `KVPIPInfoMessage`.)
///
/// | operation | body | size with header |
/// |---|---|---|
/// | GET, SET | `KVPExchangeValue` (2572) | 2576 |
/// | DELETE | `{u32 key_size; u8 key[512]}` | 520 |
/// | ENUMERATE | `{u32 index; KVPExchangeValue}` | 2580 |
public struct KVPMessage: Hashable, Sendable {
    public static let headerSize = 4

    public enum Body: Hashable, Sendable {
        case get(KVPExchangeValue)
        case set(KVPExchangeValue)
        case delete(key: [UInt16])
        case enumerate(index: UInt32, KVPExchangeValue)
    }

    public var pool: KVPPool
    public var body: Body

    public init(pool: KVPPool, body: Body) {
        self.pool = pool
        self.body = body
    }

    public var operation: KVPOperation {
        switch body {
        case .get: .get
        case .set: .set
        case .delete: .delete
        case .enumerate: .enumerate
        }
    }

    /// Bytes of the whole message for `operation` (header included).
    public static func size(of operation: KVPOperation) -> Int? {
        switch operation {
        case .get, .set: headerSize + KVPExchangeValue.size
        case .delete: headerSize + 4 + KVPExchangeValue.keyCapacity
        case .enumerate: headerSize + 4 + KVPExchangeValue.size
        case .getIPInfo, .setIPInfo: KVPIPInfoMessage.size
        default: nil
        }
    }

    /// Decodes a KVP body. The pool byte is kept whatever it says (a guest may name any pool);
    /// IP-info operations are refused here (decode them with `KVPIPInfoMessage`).
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(ICWireError) -> KVPMessage {
        var r = ICByteReader(bytes, structure: "KVP message")
        let operation = KVPOperation(rawValue: try r.u8())
        let pool = KVPPool(rawValue: try r.u8())
        try r.skip(2)
        guard let size = size(of: operation), operation != .getIPInfo, operation != .setIPInfo else {
            throw .invalidField(structure: "KVP message", field: "operation", value: UInt64(operation.rawValue))
        }
        try r.require(size - headerSize)
        switch operation {
        case .get: return KVPMessage(pool: pool, body: .get(try KVPExchangeValue.decode(r.rest)))
        case .set: return KVPMessage(pool: pool, body: .set(try KVPExchangeValue.decode(r.rest)))
        case .delete:
            let keySize = try r.u32()
            let key = try KVPExchangeValue.units(r.rest.prefix(KVPExchangeValue.keyCapacity), size: keySize, field: "key_size",
                                                 structure: "KVP delete")
            return KVPMessage(pool: pool, body: .delete(key: key))
        default:
            let index = try r.u32()
            return KVPMessage(pool: pool, body: .enumerate(index: index, try KVPExchangeValue.decode(r.rest)))
        }
    }

    public func encode() -> [UInt8] {
        var w = ICByteWriter(capacity: Self.size(of: operation) ?? 0)
        w.u8(operation.rawValue)
        w.u8(pool.rawValue)
        w.u16(0)
        switch body {
        case .get(let value), .set(let value): w.bytes(value.encode())
        case .delete(let key):
            w.u32(UInt32(2 * (key.count + 1)))
            w.bytes(KVPExchangeValue.field(key, capacity: KVPExchangeValue.keyCapacity))
        case .enumerate(let index, let value):
            w.u32(index)
            w.bytes(value.encode())
        }
        return w.bytes
    }
}

/// `operation` of a KVP message. Open: a guest may answer with any byte.
public struct KVPOperation: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let get = KVPOperation(rawValue: 0)
    public static let set = KVPOperation(rawValue: 1)
    public static let delete = KVPOperation(rawValue: 2)
    public static let enumerate = KVPOperation(rawValue: 3)
    public static let getIPInfo = KVPOperation(rawValue: 4)
    public static let setIPInfo = KVPOperation(rawValue: 5)

    private static let names = ["GET", "SET", "DELETE", "ENUMERATE", "GET_IP_INFO", "SET_IP_INFO"]
    public var description: String { rawValue < Self.names.count ? Self.names[Int(rawValue)] : "operation \(rawValue)" }
}

/// The KVP pools (Linux `enum hv_kvp_exchg_pool`).
public struct KVPPool: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Written by the host (users' pairs) for the guest to read.
    public static let external = KVPPool(rawValue: 0)
    /// Written by the guest for the host to read.
    public static let guest = KVPPool(rawValue: 1)
    /// The guest's intrinsic data (OS name, version, addresses); the host enumerates it.
    public static let auto = KVPPool(rawValue: 2)
    /// The host's intrinsic data pushed to the guest (host name, VM name and id).
    public static let autoExternal = KVPPool(rawValue: 3)
    /// Guest-local; never on the wire.
    public static let autoInternal = KVPPool(rawValue: 4)

    public var description: String {
        switch rawValue {
        case 0: "external"
        case 1: "guest"
        case 2: "auto"
        case 3: "auto-external"
        case 4: "auto-internal"
        default: "pool \(rawValue)"
        }
    }
}

/// `value_type`. Linux and Windows disagree on the 64-bit code: Linux's uapi says REG_U64 = 8,
/// Windows (and OpenVMM) use REG_QWORD = 11. Linux stores every value as text and answers with
/// REG_SZ, so a host that wants a Linux guest to store a number sends it as a string.
public struct KVPValueType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let string = KVPValueType(rawValue: 1)
    public static let expandString = KVPValueType(rawValue: 2)
    public static let u32 = KVPValueType(rawValue: 4)
    /// Linux uapi REG_U64.
    public static let linuxU64 = KVPValueType(rawValue: 8)
    /// Windows REG_QWORD.
    public static let windowsU64 = KVPValueType(rawValue: 11)
}

/// `hv_kvp_exchg_msg_value` (2572 bytes packed): `u32 value_type; u32 key_size; u32 value_size;
/// u8 key[512]; u8 value[2048]`. Key and value are UTF-16LE with a NUL; sizes are bytes including
/// it. A 32- or 64-bit value sits in the first bytes of `value`.
public struct KVPExchangeValue: Hashable, Sendable {
    public static let size = 2572
    public static let keyCapacity = 512
    public static let valueCapacity = 2048
    /// UTF-16 code units that fit with their NUL.
    public static let maximumKeyUnits = keyCapacity / 2 - 1
    public static let maximumValueUnits = valueCapacity / 2 - 1

    public enum Value: Hashable, Sendable {
        case string([UInt16])
        case u32(UInt32)
        /// `type` says which 64-bit code the peer used (`linuxU64` or `windowsU64`).
        case u64(UInt64, type: KVPValueType)
    }

    public var key: [UInt16]
    public var value: Value

    /// Nil when the key or a string value does not fit its field with a NUL.
    public init?(key: [UInt16], value: Value) {
        guard key.count <= Self.maximumKeyUnits else { return nil }
        if case .string(let units) = value, units.count > Self.maximumValueUnits { return nil }
        if case .u64(_, let type) = value, type != .linuxU64, type != .windowsU64 { return nil }
        self.key = key
        self.value = value
    }

    /// A string pair from Swift strings (nil when too long).
    public init?(key: String, string: String) {
        self.init(key: Array(key.utf16), value: .string(Array(string.utf16)))
    }

    public var keyString: String { String(decoding: key, as: UTF16.self) }

    /// The value as text (numbers in decimal, as Linux stores them).
    public var valueText: String {
        switch value {
        case .string(let units): String(decoding: units, as: UTF16.self)
        case .u32(let n): String(n)
        case .u64(let n, _): String(n)
        }
    }

    public static func decode(_ bytes: ArraySlice<UInt8>) throws(ICWireError) -> KVPExchangeValue {
        var r = ICByteReader(bytes, structure: "KVP value")
        try r.require(size)
        let type = KVPValueType(rawValue: try r.u32())
        let keySize = try r.u32()
        let valueSize = try r.u32()
        let keyField = r.rest.prefix(keyCapacity)
        try r.skip(keyCapacity)
        let valueField = r.rest.prefix(valueCapacity)
        let key = try units(keyField, size: keySize, field: "key_size", structure: "KVP value")
        let value: Value
        switch type {
        case .string, .expandString:
            value = .string(try units(valueField, size: valueSize, field: "value_size", structure: "KVP value"))
        case .u32:
            var v = ICByteReader(valueField, structure: "KVP value")
            value = .u32(try v.u32())
        case .linuxU64, .windowsU64:
            var v = ICByteReader(valueField, structure: "KVP value")
            value = .u64(try v.u64(), type: type)
        default:
            throw .invalidField(structure: "KVP value", field: "value_type", value: UInt64(type.rawValue))
        }
        // Both fields were bounded by their capacity above.
        guard let decoded = KVPExchangeValue(key: key, value: value) else {
            throw .invalidField(structure: "KVP value", field: "key_size", value: UInt64(keySize))
        }
        return decoded
    }

    public func encode() -> [UInt8] {
        var w = ICByteWriter(capacity: Self.size)
        switch value {
        case .string(let units):
            w.u32(KVPValueType.string.rawValue)
            w.u32(UInt32(2 * (key.count + 1)))
            w.u32(UInt32(2 * (units.count + 1)))
            w.bytes(Self.field(key, capacity: Self.keyCapacity))
            w.bytes(Self.field(units, capacity: Self.valueCapacity))
        case .u32(let n):
            w.u32(KVPValueType.u32.rawValue)
            w.u32(UInt32(2 * (key.count + 1)))
            w.u32(4)
            w.bytes(Self.field(key, capacity: Self.keyCapacity))
            w.u32(n)
            w.zeros(Self.valueCapacity - 4)
        case .u64(let n, let type):
            w.u32(type.rawValue)
            w.u32(UInt32(2 * (key.count + 1)))
            w.u32(8)
            w.bytes(Self.field(key, capacity: Self.keyCapacity))
            w.u64(n)
            w.zeros(Self.valueCapacity - 8)
        }
        return w.bytes
    }

    /// `units` little-endian, NUL-padded to `capacity` bytes (callers keep units below capacity/2).
    static func field(_ units: [UInt16], capacity: Int) -> [UInt8] {
        var w = ICByteWriter(capacity: capacity)
        for unit in units.prefix(capacity / 2) { w.u16(unit) }
        w.zeros(capacity - 2 * min(units.count, capacity / 2))
        return w.bytes
    }

    /// The UTF-16 string in `field` whose stated byte size is `size` (NUL included): the size must
    /// be even and fit the field; the string ends at its first NUL within that size.
    static func units(_ field: ArraySlice<UInt8>, size: UInt32, field name: String, structure: String) throws(ICWireError) -> [UInt16] {
        guard size % 2 == 0, Int(size) <= field.count else {
            throw .invalidField(structure: structure, field: name, value: UInt64(size))
        }
        var r = ICByteReader(field, structure: structure)
        var units: [UInt16] = []
        for _ in 0..<Int(size) / 2 {
            let unit = try r.u16()
            if unit == 0 { break }
            units.append(unit)
        }
        // A string without its NUL inside the size would be one unit too long for the field.
        return Array(units.prefix(field.count / 2 - 1))
    }
}

/// HRESULTs a KVP (and VSS, file-copy) answer carries, Linux include/uapi/linux/hyperv.h.
extension ICStatus {
    /// HV_S_CONT: no more items (the end of an enumeration).
    public static let noMoreItems: UInt32 = 0x8007_0103
    public static let notSupported: UInt32 = 0x8007_0032
    public static let machineLocked: UInt32 = 0x8007_04F7
    public static let deviceNotConnected: UInt32 = 0x8007_048F
    public static let invalidArgument: UInt32 = 0x8007_0057
    public static let guidNotFound: UInt32 = 0x8004_1002
    public static let alreadyExists: UInt32 = 0x8007_0050
}
