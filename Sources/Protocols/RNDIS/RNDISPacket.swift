/// The body of an RNDIS PACKET message (9 × u32 after the 8-byte header). Offsets are from the
/// start of this body; every value is the sender's and must be bounded by the reader.
public struct RNDISPacketHeader: Sendable, Equatable {
    public static let size = 36
    /// Header plus body: where the first PPI or the data of a packet we build starts.
    public static let messagePrefix = RNDISHeader.size + size

    public var dataOffset: UInt32
    public var dataLength: UInt32
    public var oobOffset: UInt32 = 0
    public var oobLength: UInt32 = 0
    public var oobCount: UInt32 = 0
    public var ppiOffset: UInt32
    public var ppiLength: UInt32
    public var vcHandle: UInt32 = 0
    public var reserved: UInt32 = 0

    public init(dataOffset: UInt32, dataLength: UInt32, ppiOffset: UInt32, ppiLength: UInt32) {
        self.dataOffset = dataOffset
        self.dataLength = dataLength
        self.ppiOffset = ppiOffset
        self.ppiLength = ppiLength
    }

    /// Decodes the body at `offset` of `bytes` (nil when fewer than 36 bytes remain).
    public init?(_ bytes: [UInt8], at offset: Int) {
        guard offset >= 0, bytes.count - offset >= Self.size else { return nil }
        dataOffset = bytes.le(UInt32.self, at: offset)
        dataLength = bytes.le(UInt32.self, at: offset + 4)
        oobOffset = bytes.le(UInt32.self, at: offset + 8)
        oobLength = bytes.le(UInt32.self, at: offset + 12)
        oobCount = bytes.le(UInt32.self, at: offset + 16)
        ppiOffset = bytes.le(UInt32.self, at: offset + 20)
        ppiLength = bytes.le(UInt32.self, at: offset + 24)
        vcHandle = bytes.le(UInt32.self, at: offset + 28)
        reserved = bytes.le(UInt32.self, at: offset + 32)
    }

    /// Writes the whole message prefix (type, `totalLength`, this body) at `offset` of `bytes`.
    public func encodeMessage(totalLength: UInt32, into bytes: inout [UInt8], at offset: Int = 0) {
        bytes.putLE(RNDISMessageType.packet.rawValue, at: offset)
        bytes.putLE(totalLength, at: offset + 4)
        let body = offset + RNDISHeader.size
        for (i, v) in [dataOffset, dataLength, oobOffset, oobLength, oobCount, ppiOffset, ppiLength, vcHandle, reserved].enumerated() {
            bytes.putLE(v, at: body + 4 * i)
        }
    }
}

/// Per-packet info types (the low 31 bits of a PPI's type field).
public enum PPIType: UInt32, Sendable {
    case checksum = 0
    case ipsec = 1
    case largeSend = 2
    case classificationHandle = 3
    case scatterGather = 5
    case ieee8021Q = 6
    case originalPacketInfo = 7
    case hashValue = 8
}

/// One per-packet info entry: `{u32 size; u32 type (bit 31: internal); u32 data offset}` then
/// data. Entries are packed back to back; `size` covers header and data.
public struct PPIEntry: Sendable, Equatable {
    public static let headerSize = 12
    /// Every PPI this VSP writes carries one u32: 16 bytes.
    public static let u32EntrySize = 16
    public static let internalBit: UInt32 = 0x8000_0000

    public var type: UInt32
    public var isInternal: Bool
    public var value: UInt32

    public init(type: UInt32, isInternal: Bool = false, value: UInt32) {
        self.type = type
        self.isInternal = isInternal
        self.value = value
    }

    /// Walks the PPI area `bytes[offset ..< offset + length]`, calling `body` for each entry
    /// whose u32 value lies inside its own entry and the area. Returns false at the first
    /// malformed entry (size smaller than its header, running past the area, data offset outside
    /// the entry): the caller drops the packet.
    public static func walk(_ bytes: [UInt8], offset: Int, length: Int, _ body: (PPIEntry) -> Void) -> Bool {
        guard offset >= 0, length >= 0, offset <= bytes.count, length <= bytes.count - offset else { return false }
        var at = offset
        let end = offset + length
        while at < end {
            guard end - at >= headerSize else { return false }
            let size = Int(bytes.le(UInt32.self, at: at))
            let rawType = bytes.le(UInt32.self, at: at + 4)
            let dataOffset = Int(bytes.le(UInt32.self, at: at + 8))
            guard size >= headerSize, size <= end - at, dataOffset >= headerSize, dataOffset <= size else { return false }
            if size - dataOffset >= 4 {
                body(PPIEntry(type: rawType & ~internalBit, isInternal: rawType & internalBit != 0,
                              value: bytes.le(UInt32.self, at: at + dataOffset)))
            }
            at += size
        }
        return true
    }

    /// Writes a 16-byte entry at `offset` of `bytes`.
    public func encode(into bytes: inout [UInt8], at offset: Int) {
        bytes.putLE(UInt32(Self.u32EntrySize), at: offset)
        bytes.putLE(type | (isInternal ? Self.internalBit : 0), at: offset + 4)
        bytes.putLE(UInt32(Self.headerSize), at: offset + 8)
        bytes.putLE(value, at: offset + 12)
    }
}

/// The u32 payloads of the PPIs this VSP reads and writes.
public enum PPIValue {
    /// Transmit checksum request (guest to host).
    public struct TransmitChecksum: Sendable, Equatable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public var isIPv4: Bool { rawValue & 1 != 0 }
        public var isIPv6: Bool { rawValue & 2 != 0 }
        public var tcpChecksum: Bool { rawValue & 4 != 0 }
        public var udpChecksum: Bool { rawValue & 8 != 0 }
        public var ipHeaderChecksum: Bool { rawValue & 0x10 != 0 }
        /// Where the TCP header starts in the frame (bits 16-25).
        public var tcpHeaderOffset: Int { Int((rawValue >> 16) & 0x3FF) }
    }

    /// Receive checksum result (host to guest).
    public enum ReceiveChecksum {
        public static let tcpFailed: UInt32 = 1 << 0
        public static let udpFailed: UInt32 = 1 << 1
        public static let ipFailed: UInt32 = 1 << 2
        public static let tcpSucceeded: UInt32 = 1 << 3
        public static let udpSucceeded: UInt32 = 1 << 4
        public static let ipSucceeded: UInt32 = 1 << 5
    }

    /// LSO v2 transmit request (guest to host).
    public struct LargeSend: Sendable, Equatable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public init(mss: Int, tcpHeaderOffset: Int, ipv6: Bool) {
            rawValue = UInt32(mss & 0xFFFFF) | UInt32(tcpHeaderOffset & 0x3FF) << 20 | 1 << 30 | (ipv6 ? 1 << 31 : 0)
        }
        public var mss: Int { Int(rawValue & 0xFFFFF) }
        public var tcpHeaderOffset: Int { Int((rawValue >> 20) & 0x3FF) }
        /// Bit 30: LSO v2 (v1 has 0 there and no protocol bit).
        public var isVersion2: Bool { rawValue & (1 << 30) != 0 }
        public var isIPv6: Bool { rawValue & (1 << 31) != 0 }
    }

    /// 802.1Q tag info: priority (bits 0-2), CFI/DEI (bit 3), VLAN id (bits 4-15).
    public struct VLAN: Sendable, Equatable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public init(id: UInt16, priority: UInt8, dei: Bool = false) {
            rawValue = UInt32(priority & 7) | (dei ? 8 : 0) | UInt32(id & 0xFFF) << 4
        }
        public var id: UInt16 { UInt16((rawValue >> 4) & 0xFFF) }
        public var priority: UInt8 { UInt8(rawValue & 7) }
        public var dei: Bool { rawValue & 8 != 0 }
        /// The 16-bit TCI of an 802.1Q tag.
        public var tci: UInt16 { UInt16(priority) << 13 | (dei ? 1 << 12 : 0) | id }
        public init(tci: UInt16) { self.init(id: tci & 0xFFF, priority: UInt8(tci >> 13), dei: tci & 0x1000 != 0) }
    }
}
