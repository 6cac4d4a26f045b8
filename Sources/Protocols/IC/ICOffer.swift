/// What an IC channel offer carries besides its GUIDs: IC channels are message-mode pipes.
/// (Offer properties a Hyper-V host uses, as OpenVMM's VMBus server sets them for pipe offers.)
public enum ICOffer {
    /// `chn_flags`: VMBUS_CHANNEL_ENUMERATE_DEVICE_INTERFACE (0x1) | VMBUS_CHANNEL_NAMED_PIPE_MODE (0x10).
    public static let channelFlags: UInt16 = 0x0011
    /// Pipe mode in the first u32 of `user_def`: 4 = message mode (1 would be byte mode).
    public static let messagePipeMode: UInt32 = 4
    /// `user_def` of an IC offer: the pipe mode, little-endian, the rest zero.
    public static var userDefined: [UInt8] {
        var w = ICByteWriter(capacity: 4)
        w.u32(messagePipeMode)
        return w.bytes
    }
}

/// Interface-type GUIDs (`if_type`) of the integration components, as Linux `hv_utils` matches
/// them (include/linux/hyperv.h).
public enum ICInterface {
    public static let heartbeat = "57164f39-9115-4e78-ab55-382f3bd5422d"
    public static let shutdown = "0e0b6031-5213-4934-818b-38d90ced39db"
    public static let timeSync = "9527e630-d0ae-497b-adce-e80ab0175caf"
    public static let kvp = "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6"
    public static let vss = "35fa2e29-ea23-4236-96ae-3a6ebacba440"
    public static let fileCopy = "34d14be3-dee4-41c8-9ae7-6b174977c192"
}
