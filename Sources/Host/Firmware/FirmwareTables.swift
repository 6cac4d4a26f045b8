/// The entry point: every firmware table a VM's guest reads, built for a vCPU count and a device
/// list, laid out by a placement, and written into guest memory before the vCPUs start.
///
///     let firmware = try FirmwareTables(vcpuCount: n, devices: devices)
///     try firmware.write(into: memory)
///     // zero page acpi_rsdp_addr / PVH rsdp_paddr = firmware.layout.rsdpAddress
///     // e820 += firmware.layout.memoryRanges
///
/// RSDP -> XSDT -> (FADT -> FACS, DSDT), MADT; and the MP floating pointer -> MP configuration
/// table. Building is pure; only `write` touches guest memory.
public struct FirmwareTables: Sendable {
    /// APIC ids are 8 bits, 0xFF is broadcast, and the IOAPIC takes the id after the last vCPU.
    public static let maxVCPUs = 254

    public let layout: FirmwareLayout
    /// Each region's full contents, by start address.
    public let regions: [(start: UInt64, bytes: [UInt8])]

    public init(vcpuCount: Int, devices: [ACPIDevice], placement: FirmwarePlacement = .pcBIOSArea) throws(FirmwareError) {
        guard (1...Self.maxVCPUs).contains(vcpuCount) else { throw .invalidVCPUCount(vcpuCount) }
        try placement.validate()
        let deviceSet = try ACPIDeviceSet(devices)
        let routing = InterruptRouting(sciIRQ: deviceSet.powerManagement?.sciIRQ)
        // After the local APIC ids 0..n-1, so the two never share an id (which matters on APIC
        // buses that predate the xAPIC; KVM itself ignores it).
        let ioapicID = UInt8(vcpuCount)

        var nvs = FirmwareRegion(name: "ACPI NVS", range: placement.nvs)
        let facs = try nvs.place(FACS.build(), signature: "FACS", alignment: FACS.alignment)

        var tables = FirmwareRegion(name: "ACPI tables", range: placement.tables)
        let dsdtBytes: [UInt8]
        do { dsdtBytes = try DSDT.build(vcpuCount: vcpuCount, devices: deviceSet) } catch { throw .aml(error) }
        let dsdt = try tables.place(dsdtBytes, signature: "DSDT", alignment: 16)
        let fadt = try tables.place(FADT.build(facsAddress: facs, dsdtAddress: dsdt, devices: deviceSet),
                                    signature: "FACP", alignment: 16)
        let madt = try tables.place(MADT.build(vcpuCount: vcpuCount, ioapicID: ioapicID, routing: routing),
                                    signature: "APIC", alignment: 16)
        let xsdt = try tables.place(XSDT.build(entries: [fadt, madt]), signature: "XSDT", alignment: 16)

        var pointers = FirmwareRegion(name: "pointers", range: placement.pointers)
        let rsdp = try pointers.place(RSDP.build(xsdtAddress: xsdt), signature: "RSD PTR ", alignment: RSDP.alignment)
        let floating = pointers.nextAddress(alignment: MPTable.alignment)
        let configuration = floating + UInt64(MPTable.floatingPointerSize)
        guard FirmwarePlacement.mpSearchAreas.contains(where: { $0.contains(floating) && floating + 16 <= $0.upperBound }) else {
            throw .invalidPlacement("the MP floating pointer at \(hex(floating)) is outside the areas OSes search")
        }
        _ = try pointers.place(MPTable.floatingPointer(configurationTable: UInt32(configuration)),
                               signature: "_MP_", alignment: MPTable.alignment)
        _ = try pointers.place(MPTable.configurationTable(vcpuCount: vcpuCount, ioapicID: ioapicID, routing: routing),
                               signature: "PCMP", alignment: 1)

        let all = [nvs, tables, pointers]
        let kinds: [FirmwareLayout.MemoryRange.Kind] = [.acpiNVS, .acpiReclaimable, .reserved]
        layout = FirmwareLayout(
            rsdpAddress: rsdp,
            mpFloatingPointerAddress: floating,
            ioapicID: ioapicID,
            memoryRanges: zip(all, kinds)
                .map { FirmwareLayout.MemoryRange(start: $0.range.lowerBound, size: UInt64($0.capacity), kind: $1) }
                .sorted { $0.start < $1.start },
            tables: all.flatMap(\.tables))
        regions = all.map { ($0.range.lowerBound, $0.contents) }
    }

    /// Writes every region whole. All regions are checked to lie in guest RAM or ROM first, so a
    /// bad placement writes nothing.
    public func write(into memory: GuestMemory) throws(FirmwareError) {
        for region in regions where (memory.map.region(containing: region.start, length: UInt64(region.bytes.count))?.kind ?? .mmio) == .mmio {
            throw .guestMemory(.outsideRAM(address: region.start, length: UInt64(region.bytes.count)))
        }
        for region in regions {
            do { try memory.load(region.bytes, at: region.start) } catch { throw .guestMemory(error) }
        }
    }
}
