/// One 256-byte SynIC message slot (TLFS HV_MESSAGE): message_type 0, payload_size 4,
/// flags 5 (bit 0: message pending), reserved 6..7, sender/port 8, payload 16..255. The SIMP page
/// holds 16 of these, one per SINT. Writers fill the payload first and the type last: a non-zero
/// type means the slot is busy.
public struct SynICMessage: Equatable, Sendable {
    public static let size = 256
    public static let payloadOffset = 16
    public static let maxPayloadSize = 240
    public static let messageTypeOffset = 0
    public static let flagsOffset = 5
    /// Flags bit 0: more messages are queued; the guest must write EOM after freeing the slot.
    public static let messagePendingFlag: UInt8 = 1
    /// A free slot.
    public static let typeNone: UInt32 = 0

    public var messageType: UInt32
    public var flags: UInt8
    public var reserved: UInt16
    public var sender: UInt64
    public var payload: [UInt8]

    public init(messageType: UInt32, payload: [UInt8], flags: UInt8 = 0, sender: UInt64 = 0) {
        self.messageType = messageType
        self.flags = flags
        self.reserved = 0
        self.sender = sender
        self.payload = payload
    }

    public static func decode(_ buffer: UnsafeRawBufferPointer) throws(VMBusWireError) -> SynICMessage {
        try decode(Array(buffer))
    }

    public static func decode(_ bytes: [UInt8]) throws(VMBusWireError) -> SynICMessage {
        guard bytes.count <= size else { throw .oversized(structure: "SynICMessage", maximum: size, actual: bytes.count) }
        var r = ByteReader(bytes, structure: "SynICMessage")
        let type = try r.u32()
        let payloadSize = try r.u8()
        let flags = try r.u8()
        let reserved = try r.u16()
        let sender = try r.u64()
        guard Int(payloadSize) <= maxPayloadSize else {
            throw .invalidField(structure: "SynICMessage", field: "payload_size", value: UInt64(payloadSize))
        }
        var message = SynICMessage(messageType: type, payload: try r.bytes(Int(payloadSize)), flags: flags, sender: sender)
        message.reserved = reserved
        return message
    }

    /// The whole slot, payload zero-padded to 240 bytes (a payload over 240 bytes is cut).
    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.u32(messageType)
        w.u8(UInt8(min(payload.count, Self.maxPayloadSize)))
        w.u8(flags)
        w.u16(reserved)
        w.u64(sender)
        w.fixed(payload, size: Self.maxPayloadSize)
        return w.bytes
    }
}
