/// The QUERY_PROPERTIES answer (24 bytes in the union), also the size of the OPENCHANNEL user data
/// storvsc sends.
public struct ChannelProperties: Sendable, Equatable {
    public static let size = 24
    /// Flag bit 0: the host creates sub-channels on request (only sent for protocol ≥ 5.1).
    public static let multiChannelFlag: UInt32 = 0x1

    public enum Offset {
        public static let reserved = 0, maxSubChannels = 4, reserved2 = 6, flags = 8, maxTransferBytes = 12, reserved3 = 16
    }

    /// Sub-channels the guest may ask for, not counting the primary.
    public var maxSubChannels: UInt16
    public var flags: UInt32
    /// Linux: max_sectors = round_down(value, 4096) / 512 and sg_tablesize = value / 4096 + 1.
    public var maxTransferBytes: UInt32

    public init(maxSubChannels: UInt16, flags: UInt32, maxTransferBytes: UInt32) {
        self.maxSubChannels = maxSubChannels
        self.flags = flags
        self.maxTransferBytes = maxTransferBytes
    }

    public init(union: [UInt8]) {
        maxSubChannels = union.le(UInt16.self, at: Offset.maxSubChannels)
        flags = union.le(UInt32.self, at: Offset.flags)
        maxTransferBytes = union.le(UInt32.self, at: Offset.maxTransferBytes)
    }

    public var supportsMultiChannel: Bool { flags & Self.multiChannelFlag != 0 }

    public func encode() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes.putLE(maxSubChannels, at: Offset.maxSubChannels)
        bytes.putLE(flags, at: Offset.flags)
        bytes.putLE(maxTransferBytes, at: Offset.maxTransferBytes)
        return bytes
    }
}

/// CREATE_SUB_CHANNELS' payload: the count, a u16 at the start of the union.
public struct SubChannelRequest: Sendable, Equatable {
    public var count: UInt16
    public init(count: UInt16) { self.count = count }
    public init(union: [UInt8]) { count = union.le(UInt16.self, at: 0) }
    public func encode() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 2)
        bytes.putLE(count, at: 0)
        return bytes
    }
}

/// VMBus interface types of the storage offers (textual GUIDs, as `offerChannel` takes them).
public enum StorageInterface {
    /// The synthetic SCSI controller storvsc binds to.
    public static let scsiController = "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f"
    /// The IDE accelerator (not offered by this VSP).
    public static let ideAccelerator = "32412632-86cb-44a2-9b5c-50d1417354f5"
}
