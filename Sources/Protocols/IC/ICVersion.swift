/// A framework or message version as the IC wire carries it: `{u16 major; u16 minor}`, 4 bytes.
/// (Linux packs the same pair as `major << 16 | minor` internally; `packed` gives that form.)
public struct ICVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let wireSize = 4

    public var major: UInt16
    public var minor: UInt16

    public init(_ major: UInt16, _ minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    public var packed: UInt32 { UInt32(major) << 16 | UInt32(minor) }
    public var description: String { "\(major).\(minor)" }

    public static func < (a: ICVersion, b: ICVersion) -> Bool { a.packed < b.packed }

    public static let zero = ICVersion(0, 0)

    public init(from r: inout ICByteReader) throws(ICWireError) {
        major = try r.u16()
        minor = try r.u16()
    }

    public func encode(into w: inout ICByteWriter) {
        w.u16(major)
        w.u16(minor)
    }
}

/// The framework versions every IC host offers: 1.0 (Windows Server 2008 guests) and 3.0.
/// Linux prefers 3.0, then 1.0.
public enum ICFrameworkVersion {
    public static let v1 = ICVersion(1, 0)
    public static let v3 = ICVersion(3, 0)
    public static let offered: [ICVersion] = [v1, v3]
}
