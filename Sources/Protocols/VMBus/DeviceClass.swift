/// Interface-type GUIDs of the synthetic devices the Linux and Windows guest drivers bind to
/// (an offer's `if_type`). Values from Linux `include/linux/hyperv.h` (HV_*_GUID).
public enum DeviceClass {
    /// Synthetic SCSI controller (storvsc).
    public static let scsi = GUID(0xba61_63d9, 0x04a1, 0x4d29, 0xb605_72e2_ffb1_dc7f)
    /// IDE accelerator (storvsc on Gen1 IDE disks).
    public static let ideAccelerator = GUID(0x3241_2632, 0x86cb, 0x44a2, 0x9b5c_50d1_4173_54f5)
    /// Synthetic network adapter (netvsc).
    public static let network = GUID(0xf861_5163, 0xdf3e, 0x46c5, 0x913f_f2d2_f965_ed0e)
    public static let heartbeat = GUID(0x5716_4f39, 0x9115, 0x4e78, 0xab55_382f_3bd5_422d)
    public static let shutdown = GUID(0x0e0b_6031, 0x5213, 0x4934, 0x818b_38d9_0ced_39db)
    public static let timeSync = GUID(0x9527_e630, 0xd0ae, 0x497b, 0xadce_e80a_b017_5caf)
    /// Key-value pair exchange.
    public static let kvp = GUID(0xa9a0_f4e7, 0x5a45, 0x4d96, 0xb827_8a84_1e8c_03e6)
    /// Volume shadow copy (backup).
    public static let vss = GUID(0x35fa_2e29, 0xea23, 0x4236, 0x96ae_3a6e_bacb_a440)
    /// Dynamic memory (balloon).
    public static let dynamicMemory = GUID(0x5250_74dc, 0x8985, 0x46e2, 0x8057_a307_dc18_a502)
}
