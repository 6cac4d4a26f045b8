/// RNDIS message types (`u32` first field; completions have the top bit set).
public enum RNDISMessageType: UInt32, Sendable {
    case packet = 0x0000_0001
    case initialize = 0x0000_0002
    case initializeComplete = 0x8000_0002
    case halt = 0x0000_0003
    case query = 0x0000_0004
    case queryComplete = 0x8000_0004
    case set = 0x0000_0005
    case setComplete = 0x8000_0005
    case reset = 0x0000_0006
    case resetComplete = 0x8000_0006
    case indicateStatus = 0x0000_0007
    case keepalive = 0x0000_0008
    case keepaliveComplete = 0x8000_0008
}

/// RNDIS/NDIS status values used in completions and indications.
public enum RNDISStatus {
    public static let success: UInt32 = 0x0000_0000
    public static let failure: UInt32 = 0xC000_0001
    public static let invalidData: UInt32 = 0xC001_0015
    public static let notSupported: UInt32 = 0xC000_00BB
    public static let invalidLength: UInt32 = 0xC001_0014
    public static let mediaConnect: UInt32 = 0x4001_000B
    public static let mediaDisconnect: UInt32 = 0x4001_000C
    public static let networkChange: UInt32 = 0x4001_0018
    public static let linkSpeedChange: UInt32 = 0x4001_0013
}

/// Every RNDIS message starts with `{u32 type; u32 total length}`; offsets inside a body count
/// from the end of these 8 bytes.
public struct RNDISHeader: Sendable, Equatable {
    public static let size = 8
    public var type: UInt32
    public var length: UInt32

    public init(type: UInt32, length: UInt32) {
        self.type = type
        self.length = length
    }

    public init?(_ bytes: [UInt8], at offset: Int = 0) {
        guard offset >= 0, bytes.count - offset >= Self.size else { return nil }
        type = bytes.le(UInt32.self, at: offset)
        length = bytes.le(UInt32.self, at: offset + 4)
    }
}
