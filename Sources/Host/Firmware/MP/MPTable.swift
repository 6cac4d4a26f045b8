/// The Intel MultiProcessor Specification 1.4 tables, for OSes (or `acpi=off` boots) that find
/// processors and interrupt wiring without ACPI: the floating pointer structure and the
/// configuration table it points to. The wiring comes from the same `InterruptRouting` as the MADT.
enum MPTable {
    static let specRevision: UInt8 = 4 // 1.4
    static let floatingPointerSize = 16
    static let headerSize = 44
    /// The floating pointer must sit on a 16-byte boundary inside an area OSes search.
    static let alignment: UInt64 = 16
    static let oemID = "VENEER"
    static let productID = "VENEERVM"
    static let isaBusID: UInt8 = 0

    enum EntryType {
        static let processor: UInt8 = 0
        static let bus: UInt8 = 1
        static let ioAPIC: UInt8 = 2
        static let ioInterrupt: UInt8 = 3
        static let localInterrupt: UInt8 = 4
    }

    enum InterruptType {
        static let int: UInt8 = 0
        static let nmi: UInt8 = 1
        static let extINT: UInt8 = 3
    }

    /// Informational CPU signature (family 6) and feature flags (FPU, APIC) for processor entries.
    static let cpuSignature: UInt32 = 0x0600
    static let cpuFeatures: UInt32 = 1 << 0 | 1 << 9

    /// "_MP_", the configuration table's address, length 1 (x16 bytes), revision, checksum, and
    /// feature bytes all zero: a configuration table is present, and IMCRP clear says the PIC is
    /// wired in virtual-wire mode (through LINT0), which is how KVM connects it.
    static func floatingPointer(configurationTable: UInt32) -> [UInt8] {
        var bytes = ACPITable.fixedASCII("_MP_", size: 4)
        bytes += littleEndian(configurationTable)
        bytes += [1, specRevision, 0]
        bytes += [0, 0, 0, 0, 0]
        bytes[10] = ACPITable.checksum(bytes)
        return bytes
    }

    /// The "PCMP" base table. Entries go in the order the specification requires: processors
    /// (vCPU 0 is the bootstrap processor), the ISA bus, the IOAPIC, I/O interrupt assignments for
    /// ISA IRQs 0-15, then LINT0 as ExtINT (the PIC) and LINT1 as NMI on every local APIC.
    static func configurationTable(vcpuCount: Int, ioapicID: UInt8, routing: InterruptRouting) -> [UInt8] {
        var entries: [UInt8] = []
        var count = 0
        for cpu in 0..<vcpuCount {
            let flags: UInt8 = cpu == 0 ? 0x03 : 0x01 // enabled, bootstrap processor
            entries += [EntryType.processor, UInt8(truncatingIfNeeded: cpu), InterruptRouting.localAPICVersion, flags]
            entries += littleEndian(cpuSignature) + littleEndian(cpuFeatures) + Array(repeating: 0, count: 8)
            count += 1
        }
        entries += [EntryType.bus, isaBusID] + ACPITable.fixedASCII("ISA", size: 6, pad: 0x20)
        entries += [EntryType.ioAPIC, ioapicID, InterruptRouting.ioapicVersion, 0x01] + littleEndian(InterruptRouting.ioapicAddress)
        count += 2
        for irq in 0..<InterruptRouting.isaIRQCount {
            entries += [EntryType.ioInterrupt, InterruptType.int] + littleEndian(routing.flags(forISAIRQ: irq).rawValue)
            entries += [isaBusID, irq, ioapicID, routing.ioapicPin(forISAIRQ: irq)]
            count += 1
        }
        let conforming = littleEndian(InterruptRouting.Flags.conforming.rawValue)
        entries += [EntryType.localInterrupt, InterruptType.extINT] + conforming + [isaBusID, 0, 0xFF, 0]
        entries += [EntryType.localInterrupt, InterruptType.nmi] + conforming + [isaBusID, 0, 0xFF, 1]
        count += 2

        var bytes = ACPITable.fixedASCII("PCMP", size: 4)
        bytes += littleEndian(UInt16(headerSize + entries.count))
        bytes += [specRevision, 0]
        bytes += ACPITable.fixedASCII(oemID, size: 8, pad: 0x20)
        bytes += ACPITable.fixedASCII(productID, size: 12, pad: 0x20)
        bytes += littleEndian(UInt32(0)) + littleEndian(UInt16(0)) // no OEM table
        bytes += littleEndian(UInt16(count))
        bytes += littleEndian(InterruptRouting.localAPICAddress)
        bytes += littleEndian(UInt16(0)) + [0, 0] // no extended table: length, checksum, reserved
        bytes += entries
        bytes[7] = ACPITable.checksum(bytes)
        return bytes
    }
}
