/// VMBus packet types (Linux `enum vmbus_packet_type`).
public enum PacketType: UInt16, Sendable, CaseIterable {
    case invalid = 0x0
    case synch = 0x1
    case addTransferPageSet = 0x2
    case removeTransferPageSet = 0x3
    case establishGPADL = 0x4
    case teardownGPADL = 0x5
    case dataInBand = 0x6
    case dataUsingTransferPages = 0x7
    case dataUsingGPADL = 0x8
    case dataUsingGPADirect = 0x9
    case cancelRequest = 0xA
    case completion = 0xB
    case dataUsingAdditionalPacket = 0xC
    case additionalData = 0xD
}

/// The 16 bytes that start every ring packet (Linux `struct vmpacket_descriptor`): type 0,
/// offset8 2, len8 4, flags 6, transaction id 8. `offset8` is where the payload starts and `len8`
/// the whole packet length (descriptor included, trailer excluded), both in 8-byte units.
public struct PacketDescriptor: Equatable, Sendable {
    public static let size = 16
    /// flags bit 0: the sender wants a completion packet with the same transaction id.
    public static let completionRequestedFlag: UInt16 = 1

    public var type: UInt16
    public var dataOffset8: UInt16
    public var length8: UInt16
    public var flags: UInt16
    public var transactionID: UInt64

    public init(type: UInt16, dataOffset8: UInt16, length8: UInt16, flags: UInt16 = 0, transactionID: UInt64 = 0) {
        self.type = type
        self.dataOffset8 = dataOffset8
        self.length8 = length8
        self.flags = flags
        self.transactionID = transactionID
    }

    public var dataOffset: Int { Int(dataOffset8) * 8 }
    public var length: Int { Int(length8) * 8 }
    public var packetType: PacketType? { PacketType(rawValue: type) }
    public var completionRequested: Bool { flags & Self.completionRequestedFlag != 0 }

    public init(from r: inout ByteReader) throws(VMBusWireError) {
        type = try r.u16()
        dataOffset8 = try r.u16()
        length8 = try r.u16()
        flags = try r.u16()
        transactionID = try r.u64()
    }

    public static func decode(_ bytes: [UInt8]) throws(VMBusWireError) -> PacketDescriptor {
        var r = ByteReader(bytes, structure: "PacketDescriptor")
        return try PacketDescriptor(from: &r)
    }

    public func encode(into w: inout ByteWriter) {
        w.u16(type)
        w.u16(dataOffset8)
        w.u16(length8)
        w.u16(flags)
        w.u64(transactionID)
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        encode(into: &w)
        return w.bytes
    }
}

/// The u64 after every packet in a ring: the packet's start index in the upper 32 bits.
public enum PacketTrailer {
    public static let size = 8
    public static func value(startIndex: UInt32) -> UInt64 { UInt64(startIndex) << 32 }
}
