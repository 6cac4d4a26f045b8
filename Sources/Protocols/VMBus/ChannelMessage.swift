/// Any channel-management message, decoded. This is the only entry point the host needs for a
/// guest payload: it checks the overall length, reads the header and dispatches on the type.
public enum ChannelMessage: Equatable, Sendable {
    case offerChannel(OfferChannel)
    case rescindChannelOffer(RescindChannelOffer)
    case requestOffers
    case allOffersDelivered
    case openChannel(OpenChannel)
    case openChannelResult(OpenChannelResult)
    case closeChannel(CloseChannel)
    case gpadlHeader(GPADLHeader)
    case gpadlBody(GPADLBody)
    case gpadlCreated(GPADLCreated)
    case gpadlTeardown(GPADLTeardown)
    case gpadlTorndown(GPADLTorndown)
    case relidReleased(RelidReleased)
    case initiateContact(InitiateContact)
    case versionResponse(VersionResponse)
    case unload
    case unloadResponse
    case modifyChannel(ModifyChannel)
    case modifyChannelResponse(ModifyChannelResponse)

    public var type: ChannelMessageType {
        switch self {
        case .offerChannel: .offerChannel
        case .rescindChannelOffer: .rescindChannelOffer
        case .requestOffers: .requestOffers
        case .allOffersDelivered: .allOffersDelivered
        case .openChannel: .openChannel
        case .openChannelResult: .openChannelResult
        case .closeChannel: .closeChannel
        case .gpadlHeader: .gpadlHeader
        case .gpadlBody: .gpadlBody
        case .gpadlCreated: .gpadlCreated
        case .gpadlTeardown: .gpadlTeardown
        case .gpadlTorndown: .gpadlTorndown
        case .relidReleased: .relidReleased
        case .initiateContact: .initiateContact
        case .versionResponse: .versionResponse
        case .unload: .unload
        case .unloadResponse: .unloadResponse
        case .modifyChannel: .modifyChannel
        case .modifyChannelResponse: .modifyChannelResponse
        }
    }

    /// Decodes from a host mapping of guest memory (copied first, so the guest cannot change it
    /// between checks).
    public static func decode(_ buffer: UnsafeRawBufferPointer) throws(VMBusWireError) -> ChannelMessage {
        try decode(Array(buffer))
    }

    public static func decode(_ bytes: [UInt8]) throws(VMBusWireError) -> ChannelMessage {
        guard bytes.count <= ChannelMessageLimits.maxMessageSize else {
            throw .oversized(structure: "channel message", maximum: ChannelMessageLimits.maxMessageSize, actual: bytes.count)
        }
        var reader = ByteReader(bytes, structure: "channel message header")
        let header = try ChannelMessageHeader(from: &reader)
        guard let type = ChannelMessageType(rawValue: header.type) else { throw .unknownMessageType(header.type) }
        switch type {
        case .offerChannel: return .offerChannel(try OfferChannel.decode(bytes))
        case .rescindChannelOffer: return .rescindChannelOffer(try RescindChannelOffer.decode(bytes))
        case .requestOffers: return .requestOffers
        case .allOffersDelivered: return .allOffersDelivered
        case .openChannel: return .openChannel(try OpenChannel.decode(bytes))
        case .openChannelResult: return .openChannelResult(try OpenChannelResult.decode(bytes))
        case .closeChannel: return .closeChannel(try CloseChannel.decode(bytes))
        case .gpadlHeader:
            var body = ByteReader(bytes, structure: "GPADLHeader", offset: ChannelMessageHeader.size)
            try body.require(GPADLHeader.fixedSize - ChannelMessageHeader.size)
            return .gpadlHeader(try GPADLHeader(body: &body))
        case .gpadlBody:
            var body = ByteReader(bytes, structure: "GPADLBody", offset: ChannelMessageHeader.size)
            try body.require(GPADLBody.fixedSize - ChannelMessageHeader.size)
            return .gpadlBody(try GPADLBody(body: &body))
        case .gpadlCreated: return .gpadlCreated(try GPADLCreated.decode(bytes))
        case .gpadlTeardown: return .gpadlTeardown(try GPADLTeardown.decode(bytes))
        case .gpadlTorndown: return .gpadlTorndown(try GPADLTorndown.decode(bytes))
        case .relidReleased: return .relidReleased(try RelidReleased.decode(bytes))
        case .initiateContact: return .initiateContact(try InitiateContact.decode(bytes))
        case .versionResponse: return .versionResponse(try VersionResponse.decode(bytes))
        case .unload: return .unload
        case .unloadResponse: return .unloadResponse
        case .modifyChannel: return .modifyChannel(try ModifyChannel.decode(bytes))
        case .modifyChannelResponse: return .modifyChannelResponse(try ModifyChannelResponse.decode(bytes))
        case .invalid, .openReservedChannel, .closeReservedChannel, .closeReservedResponse,
             .tlConnectRequest, .tlConnectResult:
            throw .unknownMessageType(header.type)
        }
    }

    public func encode() -> [UInt8] {
        func headerOnly(_ type: ChannelMessageType) -> [UInt8] {
            var w = ByteWriter(capacity: ChannelMessageHeader.size)
            ChannelMessageHeader(type: type.rawValue).encode(into: &w)
            return w.bytes
        }
        switch self {
        case .offerChannel(let m): return m.encode()
        case .rescindChannelOffer(let m): return m.encode()
        case .requestOffers: return headerOnly(.requestOffers)
        case .allOffersDelivered: return headerOnly(.allOffersDelivered)
        case .openChannel(let m): return m.encode()
        case .openChannelResult(let m): return m.encode()
        case .closeChannel(let m): return m.encode()
        case .gpadlHeader(let m): return m.encode()
        case .gpadlBody(let m): return m.encode()
        case .gpadlCreated(let m): return m.encode()
        case .gpadlTeardown(let m): return m.encode()
        case .gpadlTorndown(let m): return m.encode()
        case .relidReleased(let m): return m.encode()
        case .initiateContact(let m): return m.encode()
        case .versionResponse(let m): return m.encode()
        case .unload: return headerOnly(.unload)
        case .unloadResponse: return headerOnly(.unloadResponse)
        case .modifyChannel(let m): return m.encode()
        case .modifyChannelResponse(let m): return m.encode()
        }
    }
}
