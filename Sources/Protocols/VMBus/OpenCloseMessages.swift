/// OPENCHANNEL (guest to host). Linux `struct vmbus_channel_open_channel`, 148 bytes:
/// child_relid 8, openid 12, ringbuffer_gpadlhandle 16, target_vp 20,
/// downstream_ringbuffer_pageoffset 24, userdata 28..147.
public struct OpenChannel: FixedChannelMessage {
    public static let messageType = ChannelMessageType.openChannel
    public static let size = 148

    public var childRelid: UInt32
    public var openID: UInt32
    public var ringBufferGPADL: UInt32
    /// The VP host-to-guest interrupts go to; 0xFFFFFFFF asks for none.
    public var targetVP: UInt32
    /// Pages of the ring GPADL before this offset are the guest-to-host ring, the rest the
    /// host-to-guest ring.
    public var downstreamRingBufferPageOffset: UInt32
    public var userData: [UInt8]

    public init(childRelid: UInt32, openID: UInt32, ringBufferGPADL: UInt32, targetVP: UInt32,
                downstreamRingBufferPageOffset: UInt32, userData: [UInt8] = []) {
        self.childRelid = childRelid
        self.openID = openID
        self.ringBufferGPADL = ringBufferGPADL
        self.targetVP = targetVP
        self.downstreamRingBufferPageOffset = downstreamRingBufferPageOffset
        self.userData = userData
    }

    public init(body r: inout ByteReader) throws(VMBusWireError) {
        childRelid = try r.u32()
        openID = try r.u32()
        ringBufferGPADL = try r.u32()
        targetVP = try r.u32()
        downstreamRingBufferPageOffset = try r.u32()
        userData = try r.bytes(ChannelMessageLimits.userDefinedSize)
    }

    public func encodeBody(into w: inout ByteWriter) {
        w.u32(childRelid)
        w.u32(openID)
        w.u32(ringBufferGPADL)
        w.u32(targetVP)
        w.u32(downstreamRingBufferPageOffset)
        w.fixed(userData, size: ChannelMessageLimits.userDefinedSize)
    }
}

/// OPENCHANNEL_RESULT (host to guest). `{header; u32 child_relid; u32 openid; u32 status}`,
/// 20 bytes; status 0 is success, anything else makes the guest's open fail.
public struct OpenChannelResult: FixedChannelMessage {
    public static let messageType = ChannelMessageType.openChannelResult
    public static let size = 20
    public var childRelid: UInt32
    public var openID: UInt32
    public var status: UInt32

    public init(childRelid: UInt32, openID: UInt32, status: UInt32) {
        self.childRelid = childRelid
        self.openID = openID
        self.status = status
    }

    public init(body r: inout ByteReader) throws(VMBusWireError) {
        childRelid = try r.u32()
        openID = try r.u32()
        status = try r.u32()
    }

    public func encodeBody(into w: inout ByteWriter) {
        w.u32(childRelid)
        w.u32(openID)
        w.u32(status)
    }
}

/// CLOSECHANNEL (guest to host, no reply). `{header; u32 child_relid}`, 12 bytes.
public struct CloseChannel: FixedChannelMessage {
    public static let messageType = ChannelMessageType.closeChannel
    public static let size = 12
    public var childRelid: UInt32

    public init(childRelid: UInt32) { self.childRelid = childRelid }
    public init(body r: inout ByteReader) throws(VMBusWireError) { childRelid = try r.u32() }
    public func encodeBody(into w: inout ByteWriter) { w.u32(childRelid) }
}

/// MODIFYCHANNEL (guest to host, 4.1 and later): retarget a channel's interrupts.
/// `{header; u32 child_relid; u32 target_vp}`, 16 bytes.
public struct ModifyChannel: FixedChannelMessage {
    public static let messageType = ChannelMessageType.modifyChannel
    public static let size = 16
    public var childRelid: UInt32
    public var targetVP: UInt32

    public init(childRelid: UInt32, targetVP: UInt32) {
        self.childRelid = childRelid
        self.targetVP = targetVP
    }

    public init(body r: inout ByteReader) throws(VMBusWireError) {
        childRelid = try r.u32()
        targetVP = try r.u32()
    }

    public func encodeBody(into w: inout ByteWriter) {
        w.u32(childRelid)
        w.u32(targetVP)
    }
}

/// MODIFYCHANNEL_RESPONSE (host to guest, 5.3 and later). `{header; u32 child_relid; u32 status}`,
/// 16 bytes.
public struct ModifyChannelResponse: FixedChannelMessage {
    public static let messageType = ChannelMessageType.modifyChannelResponse
    public static let size = 16
    public var childRelid: UInt32
    public var status: UInt32

    public init(childRelid: UInt32, status: UInt32) {
        self.childRelid = childRelid
        self.status = status
    }

    public init(body r: inout ByteReader) throws(VMBusWireError) {
        childRelid = try r.u32()
        status = try r.u32()
    }

    public func encodeBody(into w: inout ByteWriter) {
        w.u32(childRelid)
        w.u32(status)
    }
}

/// Status values the host puts in OPENCHANNEL_RESULT, GPADL_CREATED and MODIFYCHANNEL_RESPONSE
/// (NTSTATUS; the Linux guest only tests for zero).
public enum ChannelStatus {
    public static let success: UInt32 = 0
    /// STATUS_UNSUCCESSFUL.
    public static let unsuccessful: UInt32 = 0xC000_0001
}
