/// The Fixed ACPI Description Table, ACPI 6.5 layout (revision 6, minor 5, 276 bytes).
///
/// With an acpi-pm device the blocks, SMI command values and SCI are the ones that plugin's header
/// comment lists. Without one there is no fixed hardware to describe, and a full FADT without PM1a
/// blocks and a PM timer is invalid, so the table says HW_REDUCED_ACPI instead. That is a microVM
/// platform: Linux then also skips the legacy PIC and PIT timer setup, so a Generation 1 VM should
/// always have acpi-pm.
enum FADT {
    static let revision: UInt8 = 6
    static let minorVersion: UInt8 = 5
    static let size = 276

    enum Flag {
        static let wbinvd: UInt32 = 1 << 0
        static let procC1: UInt32 = 1 << 2
        /// Set: there is no fixed-feature power button.
        static let powerButton: UInt32 = 1 << 4
        /// Set: there is no fixed-feature sleep button.
        static let sleepButton: UInt32 = 1 << 5
        /// Set: RTC wake status is not in the fixed register space (acpi-pm never raises RTC_STS).
        static let fixRTC: UInt32 = 1 << 6
        /// Set: a 32-bit PM timer; acpi-pm's is 24-bit, so this stays clear.
        static let timerValueExtended: UInt32 = 1 << 8
        static let resetRegisterSupported: UInt32 = 1 << 10
        static let hardwareReduced: UInt32 = 1 << 20
    }

    enum BootArchitecture {
        static let legacyDevices: UInt16 = 1 << 0
        static let i8042: UInt16 = 1 << 1
        static let vgaNotPresent: UInt16 = 1 << 2
        static let cmosRTCNotPresent: UInt16 = 1 << 5
    }

    /// The i8042 plugin resets the machine on 0xFE written to its command port.
    static let resetRegister = GenericAddress.ioPorts(0x64, length: 1, accessSize: .byte)
    static let resetValue: UInt8 = 0xFE
    /// The cmos-rtc plugin keeps the century at CMOS index 0x32 (IBM convention).
    static let centuryIndex: UInt8 = 0x32
    /// Above 100 / 1000 microseconds: C2 and C3 are not supported.
    static let noC2Latency: UInt16 = 0x0FFF
    static let noC3Latency: UInt16 = 0x0FFF

    static func build(facsAddress: UInt64, dsdtAddress: UInt64, devices: ACPIDeviceSet) -> [UInt8] {
        let pm = devices.powerManagement
        var body: [UInt8] = []
        body += littleEndian(UInt32(0))                                  // 36 FIRMWARE_CTRL: X_FIRMWARE_CTRL has it
        body += littleEndian(UInt32(exactly: dsdtAddress) ?? 0)          // 40 DSDT
        body.append(0)                                                   // 44 reserved
        body.append(0)                                                   // 45 preferred PM profile: unspecified
        body += littleEndian(UInt16(pm?.sciIRQ ?? 0))                    // 46 SCI_INT
        let smi = pm?.smiCommand
        body += littleEndian(UInt32(smi ?? 0))                           // 48 SMI_CMD
        body.append(smi == nil ? 0 : PowerManagementBlocks.acpiEnable)   // 52 ACPI_ENABLE
        body.append(smi == nil ? 0 : PowerManagementBlocks.acpiDisable)  // 53 ACPI_DISABLE
        body += [0, 0]                                                   // 54 S4BIOS_REQ, 55 PSTATE_CNT
        body += littleEndian(UInt32(pm?.pm1aEvent ?? 0))                 // 56 PM1a_EVT_BLK
        body += littleEndian(UInt32(0))                                  // 60 PM1b_EVT_BLK
        body += littleEndian(UInt32(pm?.pm1aControl ?? 0))               // 64 PM1a_CNT_BLK
        body += littleEndian(UInt32(0))                                  // 68 PM1b_CNT_BLK
        body += littleEndian(UInt32(0))                                  // 72 PM2_CNT_BLK
        body += littleEndian(UInt32(pm?.timer ?? 0))                     // 76 PM_TMR_BLK
        body += littleEndian(UInt32(pm?.gpe0 ?? 0))                      // 80 GPE0_BLK
        body += littleEndian(UInt32(0))                                  // 84 GPE1_BLK
        if pm != nil {
            body += [PowerManagementBlocks.pm1EventLength, PowerManagementBlocks.pm1ControlLength, 0,
                     PowerManagementBlocks.timerLength, PowerManagementBlocks.gpe0Length] // 88-92
        } else {
            body += [0, 0, 0, 0, 0]
        }
        body += [0, 0, 0]                                                // 93 GPE1_BLK_LEN, GPE1_BASE, CST_CNT
        body += littleEndian(noC2Latency)                                // 96 P_LVL2_LAT
        body += littleEndian(noC3Latency)                                // 98 P_LVL3_LAT
        body += littleEndian(UInt16(0)) + littleEndian(UInt16(0))        // 100 FLUSH_SIZE, FLUSH_STRIDE
        body += [0, 0, 0, 0]                                             // 104 DUTY_OFFSET/WIDTH, DAY_ALRM, MON_ALRM
        body.append(devices.rtcIRQ == nil ? 0 : centuryIndex)            // 108 CENTURY
        body += littleEndian(bootArchitecture(devices))                  // 109 IAPC_BOOT_ARCH
        body.append(0)                                                   // 111 reserved
        body += littleEndian(flags(devices))                             // 112 Flags
        body += (devices.keyboard == nil ? GenericAddress.null : resetRegister).encoded // 116 RESET_REG
        body.append(devices.keyboard == nil ? 0 : resetValue)            // 128 RESET_VALUE
        body += littleEndian(UInt16(0))                                  // 129 ARM_BOOT_ARCH
        body.append(minorVersion)                                        // 131 FADT minor version
        body += littleEndian(facsAddress)                                // 132 X_FIRMWARE_CTRL
        body += littleEndian(dsdtAddress)                                // 140 X_DSDT
        func block(_ port: UInt16?, _ length: UInt8, _ access: GenericAddress.AccessSize) -> [UInt8] {
            guard let port else { return GenericAddress.null.encoded }
            return GenericAddress.ioPorts(port, length: length, accessSize: access).encoded
        }
        // PM1 registers are 16 bits wide; GPE registers are accessed a byte at a time.
        body += block(pm?.pm1aEvent, PowerManagementBlocks.pm1EventLength, .word)     // 148 X_PM1a_EVT_BLK
        body += GenericAddress.null.encoded                                            // 160 X_PM1b_EVT_BLK
        body += block(pm?.pm1aControl, PowerManagementBlocks.pm1ControlLength, .word) // 172 X_PM1a_CNT_BLK
        body += GenericAddress.null.encoded                                            // 184 X_PM1b_CNT_BLK
        body += GenericAddress.null.encoded                                            // 196 X_PM2_CNT_BLK
        body += block(pm?.timer, PowerManagementBlocks.timerLength, .dword)           // 208 X_PM_TMR_BLK
        body += block(pm?.gpe0, PowerManagementBlocks.gpe0Length, .byte)              // 220 X_GPE0_BLK
        body += GenericAddress.null.encoded                                            // 232 X_GPE1_BLK
        body += GenericAddress.null.encoded                                            // 244 SLEEP_CONTROL_REG
        body += GenericAddress.null.encoded                                            // 256 SLEEP_STATUS_REG
        body += littleEndian(UInt64(0))                                                // 268 hypervisor vendor identity
        return ACPITable.assemble(signature: "FACP", revision: revision, body: body)
    }

    static func flags(_ devices: ACPIDeviceSet) -> UInt32 {
        var flags = Flag.wbinvd | Flag.procC1 | Flag.sleepButton
        if devices.powerManagement == nil {
            flags |= Flag.hardwareReduced | Flag.powerButton
        } else {
            flags |= Flag.fixRTC // acpi-pm has the fixed power button (PWR_BUTTON clear)
        }
        if devices.keyboard != nil { flags |= Flag.resetRegisterSupported }
        return flags
    }

    static func bootArchitecture(_ devices: ACPIDeviceSet) -> UInt16 {
        // No VGA device exists in Veneer: saying so keeps OSes from probing the legacy VGA range.
        var flags = BootArchitecture.vgaNotPresent
        if devices.hasLegacyDevices { flags |= BootArchitecture.legacyDevices }
        if devices.keyboard != nil { flags |= BootArchitecture.i8042 }
        if devices.rtcIRQ == nil { flags |= BootArchitecture.cmosRTCNotPresent }
        return flags
    }
}
