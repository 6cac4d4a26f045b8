/// NDIS_RECEIVE_SCALE_CAPABILITIES (revision 2, 18 bytes): how many receive queues the VSP gives.
public struct NDISReceiveScaleCapabilities: Sendable, Equatable {
    public static let size = 18
    /// MSI, classification at ISR and DPC, MSI-X; Toeplitz over TCP/IPv4, TCP/IPv6 (+ extensions).
    public static let capabilityBits: UInt32 = 0x0F00_0000 | 0x100 | 0x200 | 0x400

    public var receiveQueues: UInt32
    public var indirectionEntries: UInt16

    public init(receiveQueues: UInt32, indirectionEntries: UInt16 = UInt16(NDISReceiveScaleParameters.tableEntries)) {
        self.receiveQueues = receiveQueues
        self.indirectionEntries = indirectionEntries
    }

    public func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        NDISObjectHeader(type: NDISObjectHeader.typeRSSCapabilities, revision: 2, size: UInt16(Self.size)).encode(into: &b)
        b.putLE(Self.capabilityBits, at: 4)
        b.putLE(receiveQueues, at: 8)  // interrupt messages: one per queue
        b.putLE(receiveQueues, at: 12)
        b.putLE(indirectionEntries, at: 16)
        return b
    }
}

/// NDIS_RECEIVE_SCALE_PARAMETERS (revision 2): the guest's hash key and indirection table.
/// Fixed part: header 0, flags 4 (u16), base CPU 6, hash info 8, table size 12 (u16, bytes),
/// table offset 16, key size 20 (u16), key offset 24, ... (40 bytes); offsets from its start.
public struct NDISReceiveScaleParameters: Sendable, Equatable {
    public static let fixedSize = 40
    public static let tableEntries = 128
    public static let keySize = 40
    public static let flagDisable: UInt16 = 0x0010
    public static let flagHashInfoUnchanged: UInt16 = 0x0002
    public static let flagTableUnchanged: UInt16 = 0x0004
    public static let flagKeyUnchanged: UInt16 = 0x0008
    /// Toeplitz over IPv4, TCP/IPv4, IPv6, TCP/IPv6 (Linux's choice).
    public static let hashFunctionToeplitz: UInt32 = 0x1

    public var flags: UInt16
    public var hashInformation: UInt32
    /// Up to 128 queue numbers (empty when the table is unchanged or absent).
    public var table: [UInt32]
    /// The Toeplitz key (empty when unchanged or absent).
    public var key: [UInt8]

    public var disables: Bool { flags & Self.flagDisable != 0 || hashInformation & Self.hashFunctionToeplitz == 0 }

    public enum DecodeError: Error, Sendable, Equatable {
        case short(Int)
        case wrongHeader
        case tableOutOfBounds
        case keyOutOfBounds
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> NDISReceiveScaleParameters {
        guard bytes.count >= fixedSize else { throw .short(bytes.count) }
        guard let header = NDISObjectHeader(bytes), header.type == NDISObjectHeader.typeRSSParameters else { throw .wrongHeader }
        let flags = bytes.le(UInt16.self, at: 4)
        let hashInfo = bytes.le(UInt32.self, at: 8)
        let tableBytes = Int(bytes.le(UInt16.self, at: 12))
        let tableOffset = Int(bytes.le(UInt32.self, at: 16))
        let keyBytes = Int(bytes.le(UInt16.self, at: 20))
        let keyOffset = Int(bytes.le(UInt32.self, at: 24))
        var table: [UInt32] = []
        if flags & flagTableUnchanged == 0 && tableBytes > 0 {
            guard tableBytes % 4 == 0, tableBytes / 4 <= tableEntries, tableOffset >= fixedSize,
                  tableOffset <= bytes.count, tableBytes <= bytes.count - tableOffset
            else { throw .tableOutOfBounds }
            table = (0..<tableBytes / 4).map { bytes.le(UInt32.self, at: tableOffset + 4 * $0) }
        }
        var key: [UInt8] = []
        if flags & flagKeyUnchanged == 0 && keyBytes > 0 {
            guard keyBytes <= keySize, keyOffset >= fixedSize, keyOffset <= bytes.count, keyBytes <= bytes.count - keyOffset
            else { throw .keyOutOfBounds }
            key = Array(bytes[keyOffset..<keyOffset + keyBytes])
        }
        return NDISReceiveScaleParameters(flags: flags, hashInformation: hashInfo, table: table, key: key)
    }

    public init(flags: UInt16, hashInformation: UInt32, table: [UInt32], key: [UInt8]) {
        self.flags = flags
        self.hashInformation = hashInformation
        self.table = table
        self.key = key
    }

    /// The layout Linux sends: table at 40, key right after it.
    public func encoded() -> [UInt8] {
        let tableOffset = Self.fixedSize, keyOffset = Self.fixedSize + 4 * table.count
        var b = [UInt8](repeating: 0, count: keyOffset + key.count)
        NDISObjectHeader(type: NDISObjectHeader.typeRSSParameters, revision: 2, size: UInt16(Self.fixedSize)).encode(into: &b)
        b.putLE(flags, at: 4)
        b.putLE(hashInformation, at: 8)
        b.putLE(UInt16(4 * table.count), at: 12)
        b.putLE(UInt32(tableOffset), at: 16)
        b.putLE(UInt16(key.count), at: 20)
        b.putLE(UInt32(keyOffset), at: 24)
        for (i, q) in table.enumerated() { b.putLE(q, at: tableOffset + 4 * i) }
        for (i, k) in key.enumerated() { b[keyOffset + i] = k }
        return b
    }
}
