/// What the firmware tables describe about one device of the VM: the lead derives this list from
/// the VM config (a serial16550 device becomes `.serial(port:irq:)`, and so on). Lines are
/// KVM GSIs 0-23, exactly what the plugin's `irq` parameter says.
public enum ACPIDevice: Sendable, Equatable {
    /// A 16550 UART (PNP0501) at eight ports from `port`. Named COM1, COM2, ... in list order.
    case serial(port: UInt16, irq: UInt8)
    /// The MC146818 RTC and CMOS (PNP0B00) at ports 0x70-0x71, as the cmos-rtc plugin claims them.
    case rtc(irq: UInt8)
    /// The 8254 PIT (PNP0100) at four ports from `port`.
    case pit(port: UInt16, irq: UInt8)
    /// The i8042 with a PS/2 keyboard (PNP0303, ports 0x60 and 0x64) and mouse (PNP0F13). Also
    /// sets the FADT's 8042 flag and its reset register (0xFE to port 0x64, which the i8042 plugin
    /// turns into a reset).
    case keyboard(keyboardIRQ: UInt8, mouseIRQ: UInt8)
    /// The ACPI fixed hardware of the acpi-pm plugin: the FADT's blocks, the SCI and \_S5.
    case powerManagement(PowerManagementBlocks)
    /// The VMBus root device an enlightened guest's vmbus driver binds to.
    case vmbus
    /// Terms placed into \_SB as given: the way in for devices without a case of their own yet
    /// (a PCI host bridge \_SB.PCI0 with its _CRS windows, once Veneer has one).
    case systemBusTerms([AMLTerm])
}

/// The acpi-pm plugin's register blocks, with its parameter defaults (see the comment at the top
/// of Plugins/Emulated/acpi-pm/ACPIPowerManagement.swift, which states what the FADT declares).
public struct PowerManagementBlocks: Sendable, Equatable {
    public var pm1aEvent: UInt16
    public var pm1aControl: UInt16
    public var timer: UInt16
    public var gpe0: UInt16
    /// The SMI command port taking ACPI_ENABLE/ACPI_DISABLE; nil: ACPI mode from power-on.
    public var smiCommand: UInt16?
    public var sciIRQ: UInt8
    /// SLP_TYP of S5, which the \_S5 package carries.
    public var s5SleepType: UInt8

    public static let pm1EventLength: UInt8 = 4
    public static let pm1ControlLength: UInt8 = 2
    public static let timerLength: UInt8 = 4
    public static let gpe0Length: UInt8 = 4
    public static let acpiEnable: UInt8 = 0xF0
    public static let acpiDisable: UInt8 = 0xF1

    public init(pm1aEvent: UInt16 = 0x600, pm1aControl: UInt16 = 0x604, timer: UInt16 = 0x608, gpe0: UInt16 = 0x620,
                smiCommand: UInt16? = 0xB2, sciIRQ: UInt8 = 9, s5SleepType: UInt8 = 5) {
        self.pm1aEvent = pm1aEvent
        self.pm1aControl = pm1aControl
        self.timer = timer
        self.gpe0 = gpe0
        self.smiCommand = smiCommand
        self.sciIRQ = sciIRQ
        self.s5SleepType = s5SleepType
    }
}
