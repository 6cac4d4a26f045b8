/// NVSP message types (`u32` first field of every NVSP message).
public enum NVSPMessageType: UInt32, Sendable {
    case initialize = 1
    case initializeComplete = 2
    case sendNDISVersion = 100
    case sendReceiveBuffer = 101
    case sendReceiveBufferComplete = 102
    case revokeReceiveBuffer = 103
    case sendSendBuffer = 104
    case sendSendBufferComplete = 105
    case revokeSendBuffer = 106
    case sendRNDISPacket = 107
    case sendRNDISPacketComplete = 108
    case sendNDISConfig = 125
    case sendVFAssociation = 128
    case switchDataPath = 129
    case subchannel = 133
    case sendIndirectionTable = 134
}

/// NVSP_STAT_* values of completions.
public enum NVSPStatus: UInt32, Sendable {
    case none = 0
    case success = 1
    case failure = 2
    case protocolTooNew = 3
    case protocolTooOld = 4
    case invalidRNDISPacket = 5
    case busy = 6
    case unsupported = 7
}

/// `channel_type` of SEND_RNDIS_PKT: data frames or RNDIS control messages.
public enum RNDISChannelType: UInt32, Sendable {
    case data = 0
    case control = 1
}

/// A message the guest sends the VSP, decoded from an in-band packet's payload. Every field is
/// the guest's and unchecked beyond its size: the VSP bounds what it uses.
public enum NVSPMessage: Sendable, Equatable {
    case initialize(minimum: UInt32, maximum: UInt32)
    case ndisConfig(mtu: UInt32, capabilities: UInt64)
    case ndisVersion(major: UInt32, minor: UInt32)
    case sendReceiveBuffer(gpadl: UInt32, id: UInt16)
    case revokeReceiveBuffer(id: UInt16)
    case sendSendBuffer(gpadl: UInt32, id: UInt16)
    case revokeSendBuffer(id: UInt16)
    /// `sectionIndex` 0xFFFFFFFF: no send-buffer section (the RNDIS message is in the packet's
    /// GPA-direct ranges).
    case rndisPacket(channelType: UInt32, sectionIndex: UInt32, sectionSize: UInt32)
    /// The guest's completion of a transfer-page packet (a completion packet's payload).
    case rndisPacketComplete(status: UInt32)
    case switchDataPath(active: UInt32)
    case subchannel(operation: UInt32, count: UInt32)
    /// A type this VSP does not handle (or a known one too short to hold its body).
    case unknown(type: UInt32, length: Int)

    /// Linux's `struct nvsp_message`: the 4-byte type and a 36-byte union.
    public static let fullSize = 40
    /// The reply size hosts before NVSP 6.1 use.
    public static let shortSize = 28

    public static let noSection: UInt32 = 0xFFFF_FFFF
    /// The allocate operation of SUBCHANNEL.
    public static let allocateSubchannels: UInt32 = 1
    /// NDIS config capability bits (SEND_NDIS_CONFIG).
    public enum Capability {
        public static let vmq: UInt64 = 1 << 0
        public static let chimney: UInt64 = 1 << 1
        public static let sriov: UInt64 = 1 << 2
        public static let ieee8021q: UInt64 = 1 << 3
        public static let correlationID: UInt64 = 1 << 4
        public static let teaming: UInt64 = 1 << 5
        public static let virtualSubnetID: UInt64 = 1 << 6
        public static let rsc: UInt64 = 1 << 7
    }

    /// Decodes `bytes` (the payload of an in-band or completion packet). Never fails: anything
    /// not understood is `.unknown`.
    public init(_ bytes: [UInt8]) {
        guard bytes.count >= 4 else {
            self = .unknown(type: 0, length: bytes.count)
            return
        }
        let type = bytes.le(UInt32.self, at: 0)
        func need(_ size: Int) -> Bool { bytes.count >= 4 + size }
        switch NVSPMessageType(rawValue: type) {
        case .initialize? where need(8):
            self = .initialize(minimum: bytes.le(UInt32.self, at: 4), maximum: bytes.le(UInt32.self, at: 8))
        case .sendNDISConfig? where need(16):
            self = .ndisConfig(mtu: bytes.le(UInt32.self, at: 4), capabilities: bytes.le(UInt64.self, at: 12))
        case .sendNDISVersion? where need(8):
            self = .ndisVersion(major: bytes.le(UInt32.self, at: 4), minor: bytes.le(UInt32.self, at: 8))
        case .sendReceiveBuffer? where need(6):
            self = .sendReceiveBuffer(gpadl: bytes.le(UInt32.self, at: 4), id: bytes.le(UInt16.self, at: 8))
        case .revokeReceiveBuffer? where need(2):
            self = .revokeReceiveBuffer(id: bytes.le(UInt16.self, at: 4))
        case .sendSendBuffer? where need(6):
            self = .sendSendBuffer(gpadl: bytes.le(UInt32.self, at: 4), id: bytes.le(UInt16.self, at: 8))
        case .revokeSendBuffer? where need(2):
            self = .revokeSendBuffer(id: bytes.le(UInt16.self, at: 4))
        case .sendRNDISPacket? where need(12):
            self = .rndisPacket(channelType: bytes.le(UInt32.self, at: 4), sectionIndex: bytes.le(UInt32.self, at: 8),
                                sectionSize: bytes.le(UInt32.self, at: 12))
        case .sendRNDISPacketComplete? where need(4):
            self = .rndisPacketComplete(status: bytes.le(UInt32.self, at: 4))
        case .switchDataPath? where need(4):
            self = .switchDataPath(active: bytes.le(UInt32.self, at: 4))
        case .subchannel? where need(8):
            self = .subchannel(operation: bytes.le(UInt32.self, at: 4), count: bytes.le(UInt32.self, at: 8))
        default:
            self = .unknown(type: type, length: bytes.count)
        }
    }

    /// The encoding a guest would send (tests, fuzz seeds), padded to `size`.
    public func encoded(size: Int = NVSPMessage.fullSize) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: max(size, 16))
        switch self {
        case .initialize(let lo, let hi):
            b.putLE(NVSPMessageType.initialize.rawValue, at: 0); b.putLE(lo, at: 4); b.putLE(hi, at: 8)
        case .ndisConfig(let mtu, let caps):
            b = [UInt8](repeating: 0, count: max(size, 20))
            b.putLE(NVSPMessageType.sendNDISConfig.rawValue, at: 0); b.putLE(mtu, at: 4); b.putLE(caps, at: 12)
        case .ndisVersion(let major, let minor):
            b.putLE(NVSPMessageType.sendNDISVersion.rawValue, at: 0); b.putLE(major, at: 4); b.putLE(minor, at: 8)
        case .sendReceiveBuffer(let gpadl, let id):
            b.putLE(NVSPMessageType.sendReceiveBuffer.rawValue, at: 0); b.putLE(gpadl, at: 4); b.putLE(id, at: 8)
        case .revokeReceiveBuffer(let id):
            b.putLE(NVSPMessageType.revokeReceiveBuffer.rawValue, at: 0); b.putLE(id, at: 4)
        case .sendSendBuffer(let gpadl, let id):
            b.putLE(NVSPMessageType.sendSendBuffer.rawValue, at: 0); b.putLE(gpadl, at: 4); b.putLE(id, at: 8)
        case .revokeSendBuffer(let id):
            b.putLE(NVSPMessageType.revokeSendBuffer.rawValue, at: 0); b.putLE(id, at: 4)
        case .rndisPacket(let channelType, let index, let size):
            b.putLE(NVSPMessageType.sendRNDISPacket.rawValue, at: 0); b.putLE(channelType, at: 4)
            b.putLE(index, at: 8); b.putLE(size, at: 12)
        case .rndisPacketComplete(let status):
            b.putLE(NVSPMessageType.sendRNDISPacketComplete.rawValue, at: 0); b.putLE(status, at: 4)
        case .switchDataPath(let active):
            b.putLE(NVSPMessageType.switchDataPath.rawValue, at: 0); b.putLE(active, at: 4)
        case .subchannel(let op, let count):
            b.putLE(NVSPMessageType.subchannel.rawValue, at: 0); b.putLE(op, at: 4); b.putLE(count, at: 8)
        case .unknown(let type, _):
            b.putLE(type, at: 0)
        }
        return b
    }
}
