/// What the firmware tables say about a VM: its PC devices (from the plugins that emulate them
/// and their parameters) and, when enlightened, the VMBus root device.
///
/// The mapping names the PC plugins this project ships; a device from another plugin is simply not
/// described (its guest driver must probe for it), until the ABI lets plugins describe themselves.
enum PlatformDescription {
    static func acpiDevices(_ devices: [ResolvedDevice], enlightened: Bool) -> [ACPIDevice] {
        var result: [ACPIDevice] = []
        for d in devices {
            func int(_ name: String) -> Int64 {
                for p in d.parameters where p.name == name { if case .int(let v) = p.value { return v } }
                return 0
            }
            func u8(_ name: String) -> UInt8 { UInt8(clamping: int(name)) }
            func u16(_ name: String) -> UInt16 { UInt16(clamping: int(name)) }
            switch d.library.info.name {
            case "serial16550": result.append(.serial(port: u16("port"), irq: u8("irq")))
            case "cmos-rtc": result.append(.rtc(irq: u8("irq")))
            case "pit8254": result.append(.pit(port: u16("port"), irq: u8("irq")))
            case "i8042": result.append(.keyboard(keyboardIRQ: u8("irq_kbd"), mouseIRQ: u8("irq_aux")))
            case "acpi-pm":
                let smi = u16("smi_cmd_port")
                result.append(.powerManagement(PowerManagementBlocks(
                    pm1aEvent: u16("pm1a_evt"), pm1aControl: u16("pm1a_cnt"), timer: u16("pm_tmr"), gpe0: u16("gpe0"),
                    smiCommand: smi == 0 ? nil : smi, sciIRQ: u8("sci_irq"), s5SleepType: u8("s5_slp_typ"))))
            default: break
            }
        }
        if enlightened { result.append(.vmbus) }
        return result
    }
}
