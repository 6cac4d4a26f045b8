/// INITIATE_CONTACT (guest to host): version negotiation. Linux
/// `struct vmbus_channel_initiate_contact`, 40 bytes: version 8, target_vcpu 12, the
/// interrupt-page/target-info union 16 (from 5.0: msg_sint at byte 16, msg_vtl at 17), monitor
/// page 1 at 24, monitor page 2 at 32. Version 6.0 guests append more; those bytes are ignored.
public struct InitiateContact: FixedChannelMessage {
    public static let messageType = ChannelMessageType.initiateContact
    public static let size = 40

    public var versionRequested: UInt32
    /// The VP the host sends channel messages to (meaningful from 3.0 on).
    public var targetVCPU: UInt32
    /// Below 5.0 the guest's interrupt page GPA; from 5.0 `{u8 msg_sint; u8 msg_vtl; ...}`.
    public var interruptPageOrTargetInfo: UInt64
    public var monitorPage1: UInt64
    public var monitorPage2: UInt64

    public init(versionRequested: UInt32, targetVCPU: UInt32 = 0, interruptPageOrTargetInfo: UInt64 = 0,
                monitorPage1: UInt64 = 0, monitorPage2: UInt64 = 0) {
        self.versionRequested = versionRequested
        self.targetVCPU = targetVCPU
        self.interruptPageOrTargetInfo = interruptPageOrTargetInfo
        self.monitorPage1 = monitorPage1
        self.monitorPage2 = monitorPage2
    }

    public var version: VMBusVersion { VMBusVersion(rawValue: versionRequested) }
    /// The SINT the guest wants channel messages on (5.0 and later).
    public var messageSINT: UInt8 { UInt8(truncatingIfNeeded: interruptPageOrTargetInfo) }
    /// The VTL the guest connects from (5.1 and later); 0 for a normal guest.
    public var messageVTL: UInt8 { UInt8(truncatingIfNeeded: interruptPageOrTargetInfo >> 8) }

    public init(body r: inout ByteReader) throws(VMBusWireError) {
        versionRequested = try r.u32()
        targetVCPU = try r.u32()
        interruptPageOrTargetInfo = try r.u64()
        monitorPage1 = try r.u64()
        monitorPage2 = try r.u64()
    }

    public func encodeBody(into w: inout ByteWriter) {
        w.u32(versionRequested)
        w.u32(targetVCPU)
        w.u64(interruptPageOrTargetInfo)
        w.u64(monitorPage1)
        w.u64(monitorPage2)
    }
}

/// VERSION_RESPONSE (host to guest). `{header; u8 version_supported; u8 connection_state;
/// u16 padding; u32 msg_conn_id}`, 16 bytes. From 5.0 the last field is the connection id the guest
/// posts later messages to; below 5.0 hosts put the selected version there (the guest ignores it).
public struct VersionResponse: FixedChannelMessage {
    public static let messageType = ChannelMessageType.versionResponse
    public static let size = 16

    public var versionSupported: UInt8
    /// 0 successful, 1 failed for low resources, 2 failed for another reason.
    public var connectionState: UInt8
    public var padding: UInt16
    public var messageConnectionID: UInt32

    public init(versionSupported: Bool, connectionState: UInt8 = 0, messageConnectionID: UInt32 = 0) {
        self.versionSupported = versionSupported ? 1 : 0
        self.connectionState = connectionState
        self.padding = 0
        self.messageConnectionID = messageConnectionID
    }

    public init(body r: inout ByteReader) throws(VMBusWireError) {
        versionSupported = try r.u8()
        connectionState = try r.u8()
        padding = try r.u16()
        messageConnectionID = try r.u32()
    }

    public func encodeBody(into w: inout ByteWriter) {
        w.u8(versionSupported)
        w.u8(connectionState)
        w.u16(padding)
        w.u32(messageConnectionID)
    }
}
