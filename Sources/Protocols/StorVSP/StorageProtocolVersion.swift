/// A storvsp protocol version, `major << 8 | minor` on the wire. The version decides the size of
/// the SCSI request block and of its sense area, and whether sub-channels exist.
public struct StorageProtocolVersion: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Windows Server 2008.
    public static let win6 = StorageProtocolVersion(rawValue: 0x0200)
    /// Windows 7 / Server 2008 R2.
    public static let win7 = StorageProtocolVersion(rawValue: 0x0402)
    /// Windows 8 / Server 2012: the long request block, multi-channel. Linux's oldest proposal.
    public static let win8 = StorageProtocolVersion(rawValue: 0x0501)
    /// Windows 8.1 / Server 2012 R2.
    public static let win8_1 = StorageProtocolVersion(rawValue: 0x0600)
    /// Windows 10 / Server 2016: Linux enables WRITE SAME from this version on.
    public static let win10 = StorageProtocolVersion(rawValue: 0x0602)

    /// What this VSP accepts, newest first.
    public static let supported: [StorageProtocolVersion] = [.win10, .win8_1, .win8, .win7, .win6]

    public var major: UInt8 { UInt8(rawValue >> 8) }
    public var minor: UInt8 { UInt8(rawValue & 0xFF) }

    /// Pre-Win8 guests send (and expect back) the short request block.
    public var usesLongRequest: Bool { self >= .win8 }
    public var requestSize: Int { usesLongRequest ? VMSCSIRequest.longSize : VMSCSIRequest.shortSize }
    public var senseBufferSize: Int { usesLongRequest ? VMSCSIRequest.longSenseSize : VMSCSIRequest.shortSenseSize }
    public var supportsMultiChannel: Bool { self >= .win8 }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "\(major).\(minor)" }
}

/// The QUERY_PROTOCOL_VERSION payload: {u16 major_minor; u16 revision}.
public struct ProtocolVersionQuery: Sendable, Equatable {
    public static let size = 4
    public var version: StorageProtocolVersion
    public var revision: UInt16

    public init(version: StorageProtocolVersion, revision: UInt16 = 0) {
        self.version = version
        self.revision = revision
    }

    /// Decodes the union bytes (the packet from offset 12).
    public init(union: [UInt8]) {
        version = StorageProtocolVersion(rawValue: union.le(UInt16.self, at: 0))
        revision = union.le(UInt16.self, at: 2)
    }

    public func encode() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes.putLE(version.rawValue, at: 0)
        bytes.putLE(revision, at: 2)
        return bytes
    }
}
