/// The Multiple APIC Description Table (ACPI 6.5, 5.2.12), revision 6: KVM's local APICs and its
/// one IOAPIC, the interrupt source overrides `InterruptRouting` asks for, and LINT1 as NMI.
enum MADT {
    static let revision: UInt8 = 6
    static let pcatCompatible: UInt32 = 1 << 0

    enum EntryType {
        static let localAPIC: UInt8 = 0
        static let ioAPIC: UInt8 = 1
        static let interruptSourceOverride: UInt8 = 2
        static let localAPICNMI: UInt8 = 4
    }

    static let localAPICEnabled: UInt32 = 1 << 0
    /// ACPI processor UID meaning every processor.
    static let allProcessors: UInt8 = 0xFF

    /// vCPU i has APIC id i and ACPI processor UID i (the DSDT's processor devices use the same UIDs).
    static func build(vcpuCount: Int, ioapicID: UInt8, routing: InterruptRouting) -> [UInt8] {
        var body = littleEndian(InterruptRouting.localAPICAddress) + littleEndian(pcatCompatible)
        for cpu in 0..<vcpuCount {
            let id = UInt8(truncatingIfNeeded: cpu)
            body += [EntryType.localAPIC, 8, id, id] + littleEndian(localAPICEnabled)
        }
        body += [EntryType.ioAPIC, 12, ioapicID, 0] + littleEndian(InterruptRouting.ioapicAddress) + littleEndian(UInt32(0))
        for o in routing.overrides {
            body += [EntryType.interruptSourceOverride, 10, 0 /* ISA */, o.source] + littleEndian(o.gsi) + littleEndian(o.flags.rawValue)
        }
        body += [EntryType.localAPICNMI, 6, allProcessors] + littleEndian(InterruptRouting.Flags.conforming.rawValue) + [1 /* LINT1 */]
        return ACPITable.assemble(signature: "APIC", revision: revision, body: body)
    }
}
