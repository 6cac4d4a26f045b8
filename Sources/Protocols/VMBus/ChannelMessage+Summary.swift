/// One-line, human-readable summaries of channel messages, for debug logs: the message type and
/// the fields that identify what it is about, never the bulk (PFN lists, user data).
extension ChannelMessage {
    public var summary: String {
        switch self {
        case .offerChannel(let m):
            "OFFERCHANNEL relid \(m.childRelid) type \(m.interfaceType) instance \(m.interfaceInstance) connection \(hex(m.connectionID)) flags \(hex(m.channelFlags)) subchannel \(m.subChannelIndex)"
        case .rescindChannelOffer(let m): "RESCIND_CHANNELOFFER relid \(m.childRelid)"
        case .requestOffers: "REQUESTOFFERS"
        case .allOffersDelivered: "ALLOFFERS_DELIVERED"
        case .openChannel(let m):
            "OPENCHANNEL relid \(m.childRelid) open id \(m.openID) ring GPADL \(hex(m.ringBufferGPADL)) target VP \(m.targetVP) downstream offset \(m.downstreamRingBufferPageOffset) pages"
        case .openChannelResult(let m): "OPENCHANNEL_RESULT relid \(m.childRelid) open id \(m.openID) status \(hex(m.status))"
        case .closeChannel(let m): "CLOSECHANNEL relid \(m.childRelid)"
        case .gpadlHeader(let m):
            "GPADL_HEADER relid \(m.childRelid) GPADL \(hex(m.gpadl)) \(m.rangeCount) range(s), \(m.rangeBufferLength) bytes of ranges, \(m.rangeWords.count) words in this message"
        case .gpadlBody(let m): "GPADL_BODY GPADL \(hex(m.gpadl)) message \(m.messageNumber), \(m.words.count) words"
        case .gpadlCreated(let m): "GPADL_CREATED relid \(m.childRelid) GPADL \(hex(m.gpadl)) status \(hex(m.creationStatus))"
        case .gpadlTeardown(let m): "GPADL_TEARDOWN relid \(m.childRelid) GPADL \(hex(m.gpadl))"
        case .gpadlTorndown(let m): "GPADL_TORNDOWN GPADL \(hex(m.gpadl))"
        case .relidReleased(let m): "RELID_RELEASED relid \(m.childRelid)"
        case .initiateContact(let m):
            "INITIATE_CONTACT version \(m.version) target VCPU \(m.targetVCPU) SINT \(m.messageSINT)"
        case .versionResponse(let m):
            "VERSION_RESPONSE supported \(m.versionSupported) connection state \(m.connectionState) message connection \(m.messageConnectionID)"
        case .unload: "UNLOAD"
        case .unloadResponse: "UNLOAD_RESPONSE"
        case .modifyChannel(let m): "MODIFYCHANNEL relid \(m.childRelid) target VP \(m.targetVP)"
        case .modifyChannelResponse(let m): "MODIFYCHANNEL_RESPONSE relid \(m.childRelid) status \(hex(m.status))"
        }
    }
}

private func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
