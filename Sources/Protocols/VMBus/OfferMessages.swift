/// OFFERCHANNEL (host to guest): one per device. Linux `struct vmbus_channel_offer_channel`,
/// 196 bytes: header 0, if_type 8, if_instance 24, reserved 40..55, chn_flags 56,
/// mmio_megabytes 58, user_def 60..179, sub_channel_index 180, mmio_megabytes_optional 182,
/// child_relid 184, monitorid 188, monitor_allocated 189, is_dedicated_interrupt 190,
/// connection_id 192.
public struct OfferChannel: FixedChannelMessage {
    public static let messageType = ChannelMessageType.offerChannel
    public static let size = 196

    public var interfaceType: GUID
    public var interfaceInstance: GUID
    public var channelFlags: UInt16
    public var mmioMegabytes: UInt16
    /// Exactly 120 bytes on the wire (shorter is zero-padded, longer truncated when encoding).
    public var userDefined: [UInt8]
    public var subChannelIndex: UInt16
    public var mmioMegabytesOptional: UInt16
    public var childRelid: UInt32
    public var monitorID: UInt8
    /// 0: the guest signals with HvSignalEvent on `connectionID` instead of monitor pages.
    public var monitorAllocated: UInt8
    /// Bit 0: the channel has its own event flag (no shared interrupt page bit).
    public var isDedicatedInterrupt: UInt16
    public var connectionID: UInt32

    public init(interfaceType: GUID, interfaceInstance: GUID, channelFlags: UInt16 = 0, mmioMegabytes: UInt16 = 0,
                userDefined: [UInt8] = [], subChannelIndex: UInt16 = 0, mmioMegabytesOptional: UInt16 = 0,
                childRelid: UInt32, monitorID: UInt8 = 0, monitorAllocated: UInt8 = 0,
                isDedicatedInterrupt: UInt16 = 1, connectionID: UInt32) {
        self.interfaceType = interfaceType
        self.interfaceInstance = interfaceInstance
        self.channelFlags = channelFlags
        self.mmioMegabytes = mmioMegabytes
        self.userDefined = userDefined
        self.subChannelIndex = subChannelIndex
        self.mmioMegabytesOptional = mmioMegabytesOptional
        self.childRelid = childRelid
        self.monitorID = monitorID
        self.monitorAllocated = monitorAllocated
        self.isDedicatedInterrupt = isDedicatedInterrupt
        self.connectionID = connectionID
    }

    public init(body r: inout ByteReader) throws(VMBusWireError) {
        interfaceType = try r.guid()
        interfaceInstance = try r.guid()
        try r.skip(16)
        channelFlags = try r.u16()
        mmioMegabytes = try r.u16()
        userDefined = try r.bytes(ChannelMessageLimits.userDefinedSize)
        subChannelIndex = try r.u16()
        mmioMegabytesOptional = try r.u16()
        childRelid = try r.u32()
        monitorID = try r.u8()
        monitorAllocated = try r.u8()
        isDedicatedInterrupt = try r.u16()
        connectionID = try r.u32()
    }

    public func encodeBody(into w: inout ByteWriter) {
        w.guid(interfaceType)
        w.guid(interfaceInstance)
        w.zeros(16)
        w.u16(channelFlags)
        w.u16(mmioMegabytes)
        w.fixed(userDefined, size: ChannelMessageLimits.userDefinedSize)
        w.u16(subChannelIndex)
        w.u16(mmioMegabytesOptional)
        w.u32(childRelid)
        w.u8(monitorID)
        w.u8(monitorAllocated)
        w.u16(isDedicatedInterrupt)
        w.u32(connectionID)
    }
}

/// RESCIND_CHANNELOFFER (host to guest): the device is gone. `{header; u32 child_relid}`, 12 bytes.
public struct RescindChannelOffer: FixedChannelMessage {
    public static let messageType = ChannelMessageType.rescindChannelOffer
    public static let size = 12
    public var childRelid: UInt32

    public init(childRelid: UInt32) { self.childRelid = childRelid }
    public init(body r: inout ByteReader) throws(VMBusWireError) { childRelid = try r.u32() }
    public func encodeBody(into w: inout ByteWriter) { w.u32(childRelid) }
}

/// RELID_RELEASED (guest to host): the guest freed a rescinded channel; its relid may be reused.
/// `{header; u32 child_relid}`, 12 bytes.
public struct RelidReleased: FixedChannelMessage {
    public static let messageType = ChannelMessageType.relidReleased
    public static let size = 12
    public var childRelid: UInt32

    public init(childRelid: UInt32) { self.childRelid = childRelid }
    public init(body r: inout ByteReader) throws(VMBusWireError) { childRelid = try r.u32() }
    public func encodeBody(into w: inout ByteWriter) { w.u32(childRelid) }
}
