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
            case "pci-host": result.append(.systemBusTerms([pciRootBridge]))
            default: break
            }
        }
        if enlightened { result.append(.vmbus) }
        return result
    }

    /// \_SB.PCI0: the root bridge behind configuration mechanism #1. Its _CRS says what it
    /// decodes: bus 0 only (the core's one bus; without this range Linux reports a firmware bug
    /// and guesses), I/O ports around the 0xCF8-0xCFF config ports, and the 32-bit MMIO hole up
    /// to the IOAPIC for BARs.
    static let pciRootBridge: AMLTerm = .device("PCI0", [
        .name("_HID", .eisaID("PNP0A03")),
        .name("_UID", .integer(0)),
        .name("_BBN", .integer(0)),
        .name("_CRS", .resourceTemplate([
            .addressSpace(AddressSpaceDescriptor(width: .word, kind: .busNumbers, producer: true, minimum: 0, maximum: 0)),
            .io(minimum: 0xCF8, maximum: 0xCF8, alignment: 1, length: 8),
            .addressSpace(AddressSpaceDescriptor(width: .dword, kind: .io, producer: true, minimum: 0, maximum: 0xCF7)),
            .addressSpace(AddressSpaceDescriptor(width: .dword, kind: .io, producer: true, minimum: 0xD00, maximum: 0xFFFF)),
            .addressSpace(AddressSpaceDescriptor(width: .dword, kind: .memory(.nonCacheable, writable: true), producer: true,
                                                 minimum: MemoryMap.lowRAMLimit, maximum: 0xFEBF_FFFF)),
        ])),
    ])
}
