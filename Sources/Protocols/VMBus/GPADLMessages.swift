/// GPADL_HEADER (guest to host): starts a guest physical address descriptor list. Linux
/// `struct vmbus_channel_gpadl_header`: child_relid 8, gpadl 12, range_buflen 16 (u16, bytes of
/// range data in total), rangecount 18 (u16), range data from 20. The range data is a sequence of
/// 64-bit words: each range is a `{u32 byte_count; u32 byte_offset}` word followed by its PFNs.
/// What does not fit here follows in GPADL_BODY messages.
public struct GPADLHeader: Equatable, Sendable {
    public static let fixedSize = 20

    public var childRelid: UInt32
    public var gpadl: UInt32
    public var rangeBufferLength: UInt16
    public var rangeCount: UInt16
    /// The range-data words this message carries. Trailing bytes short of a whole word are
    /// dropped: some clients pad the message to its maximum size.
    public var rangeWords: [UInt64]

    public init(childRelid: UInt32, gpadl: UInt32, rangeBufferLength: UInt16, rangeCount: UInt16, rangeWords: [UInt64]) {
        self.childRelid = childRelid
        self.gpadl = gpadl
        self.rangeBufferLength = rangeBufferLength
        self.rangeCount = rangeCount
        self.rangeWords = rangeWords
    }

    /// Decodes the body after the channel-message header.
    public init(body r: inout ByteReader) throws(VMBusWireError) {
        childRelid = try r.u32()
        gpadl = try r.u32()
        rangeBufferLength = try r.u16()
        rangeCount = try r.u16()
        rangeWords = []
        rangeWords.reserveCapacity(r.remaining / 8)
        while r.remaining >= 8 { rangeWords.append(try r.u64()) }
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.fixedSize + 8 * rangeWords.count)
        ChannelMessageHeader(type: ChannelMessageType.gpadlHeader.rawValue).encode(into: &w)
        w.u32(childRelid)
        w.u32(gpadl)
        w.u16(rangeBufferLength)
        w.u16(rangeCount)
        for word in rangeWords { w.u64(word) }
        return w.bytes
    }
}

/// GPADL_BODY (guest to host): more PFNs for a GPADL being built. `{header; u32 msgnumber;
/// u32 gpadl; u64 pfn[]}`, PFNs from byte 16. Linux leaves msgnumber zero.
public struct GPADLBody: Equatable, Sendable {
    public static let fixedSize = 16

    public var messageNumber: UInt32
    public var gpadl: UInt32
    public var words: [UInt64]

    public init(messageNumber: UInt32 = 0, gpadl: UInt32, words: [UInt64]) {
        self.messageNumber = messageNumber
        self.gpadl = gpadl
        self.words = words
    }

    public init(body r: inout ByteReader) throws(VMBusWireError) {
        messageNumber = try r.u32()
        gpadl = try r.u32()
        words = []
        words.reserveCapacity(r.remaining / 8)
        while r.remaining >= 8 { words.append(try r.u64()) }
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.fixedSize + 8 * words.count)
        ChannelMessageHeader(type: ChannelMessageType.gpadlBody.rawValue).encode(into: &w)
        w.u32(messageNumber)
        w.u32(gpadl)
        for word in words { w.u64(word) }
        return w.bytes
    }
}

/// GPADL_CREATED (host to guest). `{header; u32 child_relid; u32 gpadl; u32 creation_status}`,
/// 20 bytes.
public struct GPADLCreated: FixedChannelMessage {
    public static let messageType = ChannelMessageType.gpadlCreated
    public static let size = 20
    public var childRelid: UInt32
    public var gpadl: UInt32
    public var creationStatus: UInt32

    public init(childRelid: UInt32, gpadl: UInt32, creationStatus: UInt32) {
        self.childRelid = childRelid
        self.gpadl = gpadl
        self.creationStatus = creationStatus
    }

    public init(body r: inout ByteReader) throws(VMBusWireError) {
        childRelid = try r.u32()
        gpadl = try r.u32()
        creationStatus = try r.u32()
    }

    public func encodeBody(into w: inout ByteWriter) {
        w.u32(childRelid)
        w.u32(gpadl)
        w.u32(creationStatus)
    }
}

/// GPADL_TEARDOWN (guest to host). `{header; u32 child_relid; u32 gpadl}`, 16 bytes.
public struct GPADLTeardown: FixedChannelMessage {
    public static let messageType = ChannelMessageType.gpadlTeardown
    public static let size = 16
    public var childRelid: UInt32
    public var gpadl: UInt32

    public init(childRelid: UInt32, gpadl: UInt32) {
        self.childRelid = childRelid
        self.gpadl = gpadl
    }

    public init(body r: inout ByteReader) throws(VMBusWireError) {
        childRelid = try r.u32()
        gpadl = try r.u32()
    }

    public func encodeBody(into w: inout ByteWriter) {
        w.u32(childRelid)
        w.u32(gpadl)
    }
}

/// GPADL_TORNDOWN (host to guest). `{header; u32 gpadl}`, 12 bytes.
public struct GPADLTorndown: FixedChannelMessage {
    public static let messageType = ChannelMessageType.gpadlTorndown
    public static let size = 12
    public var gpadl: UInt32

    public init(gpadl: UInt32) { self.gpadl = gpadl }
    public init(body r: inout ByteReader) throws(VMBusWireError) { gpadl = try r.u32() }
    public func encodeBody(into w: inout ByteWriter) { w.u32(gpadl) }
}
