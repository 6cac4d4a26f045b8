/// A message the VSP sends the guest (as a completion or in-band), encoded padded to the size
/// the negotiated version calls for (`NVSPVersion.messageSize`).
public enum NVSPReply: Sendable, Equatable {
    case initializeComplete(status: NVSPStatus)
    /// One section covering the receive buffer: `count` sub-allocations of `subAllocationSize`
    /// bytes from offset 0.
    case receiveBufferComplete(status: NVSPStatus, subAllocationSize: UInt32, count: UInt32)
    case sendBufferComplete(status: NVSPStatus, sectionSize: UInt32)
    case rndisPacketComplete(status: NVSPStatus)
    /// SEND_RNDIS_PKT for a host-to-guest transfer-page packet (no send-buffer section).
    case rndisPacket(channelType: RNDISChannelType)
    case subchannelComplete(status: NVSPStatus, count: UInt32)

    /// Byte offsets inside the encoding (for layout tests and the guest side of tests).
    public enum Offset {
        public static let type = 0
        public static let initStatus = 12
        public static let receiveStatus = 4, receiveSectionCount = 8, sectionOffset = 12, subAllocSize = 16
        public static let subAllocCount = 20, sectionEnd = 24
        public static let sendStatus = 4, sendSectionSize = 8
        public static let completeStatus = 4
        public static let subchannelStatus = 4, subchannelCount = 8
    }

    public func encoded(size: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: max(size, NVSPMessage.shortSize))
        switch self {
        case .initializeComplete(let status):
            b.putLE(NVSPMessageType.initializeComplete.rawValue, at: 0)
            // negotiated version (deprecated, 0) at 4, max MDL chain length (0) at 8.
            b.putLE(status.rawValue, at: Offset.initStatus)
        case .receiveBufferComplete(let status, let size, let count):
            b.putLE(NVSPMessageType.sendReceiveBufferComplete.rawValue, at: 0)
            b.putLE(status.rawValue, at: Offset.receiveStatus)
            b.putLE(UInt32(status == .success ? 1 : 0), at: Offset.receiveSectionCount)
            if status == .success {
                b.putLE(UInt32(0), at: Offset.sectionOffset)
                b.putLE(size, at: Offset.subAllocSize)
                b.putLE(count, at: Offset.subAllocCount)
                b.putLE(size &* count, at: Offset.sectionEnd)
            }
        case .sendBufferComplete(let status, let sectionSize):
            b.putLE(NVSPMessageType.sendSendBufferComplete.rawValue, at: 0)
            b.putLE(status.rawValue, at: Offset.sendStatus)
            b.putLE(sectionSize, at: Offset.sendSectionSize)
        case .rndisPacketComplete(let status):
            b.putLE(NVSPMessageType.sendRNDISPacketComplete.rawValue, at: 0)
            b.putLE(status.rawValue, at: Offset.completeStatus)
        case .rndisPacket(let channelType):
            b.putLE(NVSPMessageType.sendRNDISPacket.rawValue, at: 0)
            b.putLE(channelType.rawValue, at: 4)
            b.putLE(NVSPMessage.noSection, at: 8)
            b.putLE(UInt32(0), at: 12)
        case .subchannelComplete(let status, let count):
            b.putLE(NVSPMessageType.subchannel.rawValue, at: 0)
            b.putLE(status.rawValue, at: Offset.subchannelStatus)
            b.putLE(count, at: Offset.subchannelCount)
        }
        return b
    }
}
