/// The time-sync body (icmsgtype 4). Two layouts, chosen by the negotiated message version:
///
/// 4.0 and later (Linux `ictimesync_ref_data`, 22 bytes packed):
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | `parenttime`: host UTC, 100 ns units since 1601-01-01 (Windows FILETIME) |
/// | 8 | 8 | `vmreferencetime`: the partition reference counter when `parenttime` was sampled |
/// | 16 | 1 | `flags` (`TimeSyncFlags`) |
/// | 17 | 1 | `leapflags` |
/// | 18 | 1 | `stratum` |
/// | 19 | 3 | reserved |
///
/// before 4.0 (Linux `ictimesync_data`, 25 bytes packed):
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | `parenttime` |
/// | 8 | 8 | `childtime` (unused by Linux) |
/// | 16 | 8 | `roundtriptime` (unused by Linux) |
/// | 24 | 1 | `flags` |
///
/// Linux drops a message whose body is shorter than its version's layout, and with the older
/// layout it uses its own current reference counter in place of `vmreferencetime`.
public struct TimeSyncMessage: Hashable, Sendable {
    /// Body sizes of the two layouts.
    public static let referenceSize = 22
    public static let legacySize = 25
    /// The first message version whose body carries the reference time.
    public static let referenceVersion = ICVersion(4, 0)

    public var parentTime: UInt64
    /// The reference counter at `parentTime` (4.0 layout); nil in the older layout.
    public var referenceTime: UInt64?
    public var flags: TimeSyncFlags
    /// 4.0 layout only; 0 = no leap second pending.
    public var leapFlags: UInt8
    /// 4.0 layout only; the host's NTP stratum (0 unknown).
    public var stratum: UInt8

    public init(parentTime: UInt64, referenceTime: UInt64?, flags: TimeSyncFlags, leapFlags: UInt8 = 0, stratum: UInt8 = 0) {
        self.parentTime = parentTime
        self.referenceTime = referenceTime
        self.flags = flags
        self.leapFlags = leapFlags
        self.stratum = stratum
    }

    /// Whether message version `version` uses the reference layout.
    public static func usesReferenceLayout(_ version: ICVersion) -> Bool { version >= referenceVersion }

    /// Decodes a body in the layout of message version `version`.
    public static func decode(_ body: ArraySlice<UInt8>, version: ICVersion) throws(ICWireError) -> TimeSyncMessage {
        var r = ICByteReader(body, structure: "IC time-sync body")
        let parent = try r.u64()
        if usesReferenceLayout(version) {
            try r.require(referenceSize - 8)
            let reference = try r.u64()
            let flags = TimeSyncFlags(rawValue: try r.u8())
            let leap = try r.u8()
            let stratum = try r.u8()
            return TimeSyncMessage(parentTime: parent, referenceTime: reference, flags: flags, leapFlags: leap, stratum: stratum)
        }
        try r.require(legacySize - 8)
        try r.skip(16)
        return TimeSyncMessage(parentTime: parent, referenceTime: nil, flags: TimeSyncFlags(rawValue: try r.u8()))
    }

    /// Encodes in the reference layout when `referenceTime` is set, else the older one.
    public func encode() -> [UInt8] {
        var w = ICByteWriter(capacity: Self.legacySize)
        w.u64(parentTime)
        if let referenceTime {
            w.u64(referenceTime)
            w.u8(flags.rawValue)
            w.u8(leapFlags)
            w.u8(stratum)
            w.zeros(3)
        } else {
            w.zeros(16)   // childtime, roundtriptime: the host has no use for them
            w.u8(flags.rawValue)
        }
        return w.bytes
    }
}

/// `flags` of a time-sync message: 0 is a probe, SYNC sets the guest's clock now, SAMPLE is a
/// periodic sample (Linux stores it for its "hyperv" PTP clock).
public struct TimeSyncFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let sync = TimeSyncFlags(rawValue: 0x1)
    public static let sample = TimeSyncFlags(rawValue: 0x2)
}

/// Windows FILETIME: 100 ns units since 1601-01-01 UTC, the unit of `parentTime`.
public enum FileTime {
    /// 1970-01-01 in FILETIME units (Linux `WLTIMEDELTA`).
    public static let unixEpoch: UInt64 = 116_444_736_000_000_000

    /// FILETIME of a Unix time in nanoseconds (truncated to 100 ns).
    public static func fromUnix(nanoseconds: UInt64) -> UInt64 { unixEpoch &+ nanoseconds / 100 }

    /// Unix nanoseconds of a FILETIME, nil before 1970 or past what 64-bit nanoseconds hold.
    public static func toUnixNanoseconds(_ fileTime: UInt64) -> UInt64? {
        guard fileTime >= unixEpoch else { return nil }
        let (ns, overflow) = (fileTime - unixEpoch).multipliedReportingOverflow(by: 100)
        return overflow ? nil : ns
    }
}
