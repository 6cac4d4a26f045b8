/// The VSS (backup) body (icmsgtype 5), Linux include/uapi/linux/hyperv.h `hv_vss_msg` (12 bytes
/// packed): `{u8 operation; u8 reserved[7]}` then `u32 flags` (the HOT_BACKUP feature flags, or
/// GET_DM_INFO's flags). Linux drops a VSS packet shorter than 28 + 12 bytes, answers in the same
/// buffer, and writes `flags` only for HOT_BACKUP (VSS_HBU_NO_AUTO_RECOVERY) and GET_DM_INFO (0).
public struct VSSMessage: Hashable, Sendable {
    public static let size = 12

    public var operation: VSSOperation
    public var flags: UInt32

    public init(operation: VSSOperation, flags: UInt32 = 0) {
        self.operation = operation
        self.flags = flags
    }

    public static func decode(_ body: ArraySlice<UInt8>) throws(ICWireError) -> VSSMessage {
        var r = ICByteReader(body, structure: "IC VSS body")
        try r.require(size)
        let operation = VSSOperation(rawValue: try r.u8())
        try r.skip(7)
        return VSSMessage(operation: operation, flags: try r.u32())
    }

    public func encode() -> [UInt8] {
        var w = ICByteWriter(capacity: Self.size)
        w.u8(operation.rawValue)
        w.zeros(7)
        w.u32(flags)
        return w.bytes
    }
}

/// `operation` of a VSS message (Linux `enum hv_vss_op`). Open: a guest may answer with any byte.
public struct VSSOperation: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let create = VSSOperation(rawValue: 0)
    public static let delete = VSSOperation(rawValue: 1)
    /// "Can you take a backup?": Linux asks its daemon and answers flags VSS_HBU_NO_AUTO_RECOVERY.
    public static let hotBackup = VSSOperation(rawValue: 2)
    public static let getDMInfo = VSSOperation(rawValue: 3)
    public static let backupComplete = VSSOperation(rawValue: 4)
    /// Linux's daemon freezes every mounted file system (FIFREEZE).
    public static let freeze = VSSOperation(rawValue: 5)
    public static let thaw = VSSOperation(rawValue: 6)
    public static let autoRecover = VSSOperation(rawValue: 7)

    private static let names = ["CREATE", "DELETE", "HOT_BACKUP", "GET_DM_INFO", "BU_COMPLETE", "FREEZE", "THAW", "AUTO_RECOVER"]
    public var description: String { rawValue < Self.names.count ? Self.names[Int(rawValue)] : "operation \(rawValue)" }
}

/// `flags` Linux answers a HOT_BACKUP with: VSS_HBU_NO_AUTO_RECOVERY.
public enum VSSFlags {
    public static let noAutoRecovery: UInt32 = 0x5
}
