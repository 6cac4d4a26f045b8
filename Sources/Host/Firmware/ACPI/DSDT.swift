/// The Differentiated System Description Table: the AML namespace of the VM's devices.
///
///     \_SB.CPnn   ACPI0007 processor devices, _UID n = the MADT's processor UID (APIC id n)
///     \_SB.COMn   PNP0501, per serial port      \_SB.RTC   PNP0B00
///     \_SB.TMR    PNP0100                       \_SB.KBD   PNP0303, \_SB.MOU PNP0F13
///     \_SB.VMBS   "VMBus" (enlightened guests)  \_S5       with acpi-pm's SLP_TYP
///
/// There is no PCI host bridge yet, so the ISA devices sit directly in \_SB rather than under
/// \_SB.PCI0.ISA; `ACPIDevice.systemBusTerms` adds \_SB.PCI0 once one exists.
enum DSDT {
    /// Revision 2: AML integers are 64 bits wide (Ones is all 64 bits set).
    static let revision: UInt8 = 2

    static func build(vcpuCount: Int, devices: ACPIDeviceSet) throws(AMLError) -> [UInt8] {
        var systemBus: [AMLTerm] = []
        for cpu in 0..<vcpuCount {
            systemBus.append(.device(processorName(cpu), [
                .name("_HID", .string("ACPI0007")),
                .name("_UID", .integer(UInt64(cpu))),
            ]))
        }
        for (index, serial) in devices.serials.enumerated() {
            systemBus.append(.device("COM\(index + 1)", [
                .name("_HID", .eisaID("PNP0501")),
                .name("_UID", .integer(UInt64(index + 1))),
                .name("_CRS", .resourceTemplate([portRange(serial.port, count: 8), isaInterrupt(serial.irq)])),
            ]))
        }
        if let irq = devices.rtcIRQ {
            systemBus.append(.device("RTC", [
                .name("_HID", .eisaID("PNP0B00")),
                .name("_CRS", .resourceTemplate([portRange(0x70, count: 2), isaInterrupt(irq)])),
            ]))
        }
        if let pit = devices.pit {
            systemBus.append(.device("TMR", [
                .name("_HID", .eisaID("PNP0100")),
                .name("_CRS", .resourceTemplate([portRange(pit.port, count: 4), isaInterrupt(pit.irq)])),
            ]))
        }
        if let keyboard = devices.keyboard {
            systemBus.append(.device("KBD", [
                .name("_HID", .eisaID("PNP0303")),
                .name("_CRS", .resourceTemplate([
                    portRange(0x60, count: 1), portRange(0x64, count: 1), isaInterrupt(keyboard.keyboardIRQ),
                ])),
            ]))
            systemBus.append(.device("MOU", [
                .name("_HID", .eisaID("PNP0F13")),
                .name("_CRS", .resourceTemplate([isaInterrupt(keyboard.mouseIRQ)])),
            ]))
        }
        if devices.vmbus {
            // Linux's vmbus_acpi_add fails unless walking this device's _CRS succeeds, so the
            // (empty) template must exist; it then looks for MMIO windows in ancestors' _CRS and
            // skips ancestors without one. "VMBus" is not a valid PNP/ACPI id, which is what
            // Hyper-V uses and what the driver matches.
            systemBus.append(.device("VMBS", [
                .name("_HID", .string("VMBus")),
                .name("_UID", .integer(0)),
                .method("_STA", returns: .integer(0x0F)),
                .name("_CRS", .resourceTemplate([])),
            ]))
        }
        systemBus += devices.systemBusTerms

        var root: [AMLTerm] = [.scope("\\_SB", systemBus)]
        if let pm = devices.powerManagement {
            let slpTyp = AMLData.integer(UInt64(pm.s5SleepType))
            root.append(.name("\\_S5", .package([slpTyp, slpTyp, .integer(0), .integer(0)])))
        }
        return ACPITable.assemble(signature: "DSDT", revision: revision, body: try AMLTerm.encode(root))
    }

    /// CP00-CPFE: two hex digits cover every APIC id an xAPIC MADT entry can hold.
    static func processorName(_ index: Int) -> String {
        let digits = String(index, radix: 16, uppercase: true)
        return "CP" + String(repeating: "0", count: max(0, 2 - digits.count)) + digits
    }

    /// A fixed range of `count` ports: IO (Decode16, port, port, 1, count).
    static func portRange(_ port: UInt16, count: UInt8) -> ResourceDescriptor {
        .io(minimum: port, maximum: port, alignment: 1, length: count)
    }

    /// An ISA device's edge-triggered, active-high line; above 15 only an Interrupt descriptor can name it.
    static func isaInterrupt(_ line: UInt8) -> ResourceDescriptor {
        line < InterruptRouting.isaIRQCount
            ? .irqNoFlags([line])
            : .interrupt([UInt32(line)], trigger: .edge, polarity: .activeHigh, shared: false)
    }
}
