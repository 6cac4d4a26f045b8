/// The `msgtype` of a channel-management message (payload of HvPostMessage and of the SynIC
/// message slot). Numbers from Linux `enum vmbus_channel_message_type`.
public enum ChannelMessageType: UInt32, Sendable, CaseIterable {
    case invalid = 0
    case offerChannel = 1
    case rescindChannelOffer = 2
    case requestOffers = 3
    case allOffersDelivered = 4
    case openChannel = 5
    case openChannelResult = 6
    case closeChannel = 7
    case gpadlHeader = 8
    case gpadlBody = 9
    case gpadlCreated = 10
    case gpadlTeardown = 11
    case gpadlTorndown = 12
    case relidReleased = 13
    case initiateContact = 14
    case versionResponse = 15
    case unload = 16
    case unloadResponse = 17
    case openReservedChannel = 18
    case closeReservedChannel = 19
    case closeReservedResponse = 20
    case tlConnectRequest = 21
    case modifyChannel = 22
    case tlConnectResult = 23
    case modifyChannelResponse = 24
}

/// `{u32 msgtype; u32 padding}`: the 8 bytes every channel message starts with.
public struct ChannelMessageHeader: Equatable, Sendable {
    public static let size = 8
    public var type: UInt32
    public var padding: UInt32

    public init(type: UInt32, padding: UInt32 = 0) {
        self.type = type
        self.padding = padding
    }

    public init(from reader: inout ByteReader) throws(VMBusWireError) {
        type = try reader.u32()
        padding = try reader.u32()
    }

    public func encode(into writer: inout ByteWriter) {
        writer.u32(type)
        writer.u32(padding)
    }
}

/// Sizes that bound every channel message.
public enum ChannelMessageLimits {
    /// A SynIC message payload, and so the largest channel message.
    public static let maxMessageSize = 240
    /// `user_def` in an offer and `userdata` in OPENCHANNEL.
    public static let userDefinedSize = 120
}
