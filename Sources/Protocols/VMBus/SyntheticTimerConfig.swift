/// One synthetic timer's configuration register (HV_X64_MSR_STIMERx_CONFIG; Linux
/// `union hv_stimer_config`): enable 0, periodic 1, lazy 2, auto_enable 3, apic_vector 4-11,
/// direct_mode 12, reserved 13-15, sintx 16-19, reserved 20-63.
public struct SyntheticTimerConfig: RawRepresentable, Equatable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue & Self.definedBits }

    /// The bits a guest can set; reserved bits read back as 0.
    public static let definedBits: UInt64 = 0x000F_1FFF

    public var enabled: Bool {
        get { rawValue & 1 != 0 }
        set { rawValue = newValue ? rawValue | 1 : rawValue & ~1 }
    }
    public var periodic: Bool { rawValue & 1 << 1 != 0 }
    public var lazy: Bool { rawValue & 1 << 2 != 0 }
    public var autoEnable: Bool { rawValue & 1 << 3 != 0 }
    public var apicVector: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 4) }
    public var directMode: Bool { rawValue & 1 << 12 != 0 }
    public var sint: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 16) & 0xF }
}
