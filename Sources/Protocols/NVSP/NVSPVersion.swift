/// An NVSP protocol version, `major << 16 | minor` on the wire.
public struct NVSPVersion: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let v1 = NVSPVersion(rawValue: 0x0000_0002)
    public static let v2 = NVSPVersion(rawValue: 0x0003_0002)
    public static let v4 = NVSPVersion(rawValue: 0x0004_0000)
    public static let v5 = NVSPVersion(rawValue: 0x0005_0000)
    public static let v6 = NVSPVersion(rawValue: 0x0006_0000)
    public static let v61 = NVSPVersion(rawValue: 0x0006_0001)

    /// What this VSP speaks, newest first (Linux proposes 6.1, 6, 5, 4, 2, 1 in turn).
    public static let supported: [NVSPVersion] = [.v61, .v6, .v5, .v4, .v2]

    /// The newest supported version inside the guest's [minimum, maximum], if any.
    public static func negotiate(minimum: UInt32, maximum: UInt32) -> NVSPVersion? {
        supported.first { $0.rawValue >= minimum && $0.rawValue <= maximum }
    }

    /// Replies are padded to this size: 28 bytes before 6.1 (Linux's older completion checks read
    /// that far), 40 from 6.1 (the full `nvsp_message`).
    public var messageSize: Int { self >= .v61 ? NVSPMessage.fullSize : NVSPMessage.shortSize }

    public static func < (a: NVSPVersion, b: NVSPVersion) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .v1: "1"
        case .v2: "2"
        default: "\(rawValue >> 16).\(rawValue & 0xFFFF)"
        }
    }
}

/// NDIS versions a guest announces with SEND_NDIS_VER (`major << 16 | minor`).
public enum NDISVersion {
    public static let v6_1: UInt32 = 0x0006_0001
    public static let v6_30: UInt32 = 0x0006_001E
}
