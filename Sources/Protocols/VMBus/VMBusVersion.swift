/// A VMBus protocol version, `major << 16 | minor` on the wire.
public struct VMBusVersion: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(major: UInt16, minor: UInt16) { rawValue = UInt32(major) << 16 | UInt32(minor) }

    public var major: UInt16 { UInt16(truncatingIfNeeded: rawValue >> 16) }
    public var minor: UInt16 { UInt16(truncatingIfNeeded: rawValue) }
    public var description: String { "\(major).\(minor)" }

    public static func < (a: VMBusVersion, b: VMBusVersion) -> Bool { a.rawValue < b.rawValue }

    public static let ws2008 = VMBusVersion(major: 0, minor: 13)
    public static let win7 = VMBusVersion(major: 1, minor: 1)
    public static let win8 = VMBusVersion(major: 2, minor: 4)
    public static let win8_1 = VMBusVersion(major: 3, minor: 0)
    public static let win10 = VMBusVersion(major: 4, minor: 0)
    public static let win10_4_1 = VMBusVersion(major: 4, minor: 1)
    /// From here on the guest names its message SINT, posts INITIATE_CONTACT to connection id 4
    /// and uses the connection id from VERSION_RESPONSE afterwards.
    public static let win10_5_0 = VMBusVersion(major: 5, minor: 0)
    public static let win10_5_1 = VMBusVersion(major: 5, minor: 1)
    public static let win10_5_2 = VMBusVersion(major: 5, minor: 2)
    /// Windows Server 2022: MODIFYCHANNEL gets a MODIFYCHANNEL_RESPONSE.
    public static let win10_5_3 = VMBusVersion(major: 5, minor: 3)
    /// "Copper": feature flags and confidential VMBus; longer INITIATE_CONTACT/VERSION_RESPONSE.
    public static let v6_0 = VMBusVersion(major: 6, minor: 0)
}
