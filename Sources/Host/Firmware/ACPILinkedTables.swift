/// The ACPI tables in the relocatable form firmware with its own memory layout loads (SeaBIOS,
/// OVMF, through fw_cfg): the tables in one blob whose pointer fields hold offsets into the blob
/// and whose checksums are zero, the RSDP pointing into that blob, and the linker/loader script
/// that allocates both, turns the offsets into addresses and fills in the checksums.
///
/// The same tables `FirmwareTables` writes at fixed addresses (FACS, DSDT, FADT, MADT, XSDT and
/// the RSDP; the MP table is a BIOS-area structure firmware builds itself).
public struct ACPILinkedTables: Sendable, Equatable {
    public static let tablesFile = "etc/acpi/tables"
    public static let rsdpFile = "etc/acpi/rsdp"
    public static let loaderFile = "etc/table-loader"

    public let tables: [UInt8]
    public let rsdp: [UInt8]
    /// The linker/loader script: 128-byte commands.
    public let loader: [UInt8]

    /// FADT pointer fields (ACPI 6.5, 5.2.9), all into the tables blob: FIRMWARE_CTRL and DSDT
    /// (32-bit), X_FIRMWARE_CTRL and X_DSDT (64-bit).
    static let fadtPointers: [(offset: Int, size: UInt8)] = [(36, 4), (40, 4), (132, 8), (140, 8)]
    static let xsdtEntries = 36
    static let rsdpXSDTAddress = 24
    static let rsdpChecksum = 8
    static let rsdpExtendedChecksum = 32

    public init(vcpuCount: Int, devices: [ACPIDevice]) throws(FirmwareError) {
        guard (1...FirmwareTables.maxVCPUs).contains(vcpuCount) else { throw .invalidVCPUCount(vcpuCount) }
        let deviceSet = try ACPIDeviceSet(devices)
        let routing = InterruptRouting(sciIRQ: deviceSet.powerManagement?.sciIRQ)
        var blob: [UInt8] = []
        var offsets: [String: Int] = [:]
        var lengths: [String: Int] = [:]
        func place(_ table: [UInt8], _ signature: String, alignment: Int) -> Int {
            blob += [UInt8](repeating: 0, count: (alignment - blob.count % alignment) % alignment)
            offsets[signature] = blob.count
            lengths[signature] = table.count
            blob += table
            return blob.count - table.count
        }
        let facs = place(FACS.build(), "FACS", alignment: Int(FACS.alignment))
        let dsdtBytes: [UInt8]
        do { dsdtBytes = try DSDT.build(vcpuCount: vcpuCount, devices: deviceSet) } catch { throw .aml(error) }
        let dsdt = place(dsdtBytes, "DSDT", alignment: 16)
        let fadt = place(FADT.build(facsAddress: UInt64(facs), dsdtAddress: UInt64(dsdt), devices: deviceSet), "FACP", alignment: 16)
        let madt = place(MADT.build(vcpuCount: vcpuCount, ioapicID: UInt8(vcpuCount), routing: routing),
                         "APIC", alignment: 16)
        let xsdt = place(XSDT.build(entries: [UInt64(fadt), UInt64(madt)]), "XSDT", alignment: 16)

        var rsdp = RSDP.build(xsdtAddress: UInt64(xsdt))
        rsdp[Self.rsdpChecksum] = 0
        rsdp[Self.rsdpExtendedChecksum] = 0

        var script: [LinkerLoaderCommand] = [
            .allocate(file: Self.rsdpFile, alignment: UInt32(RSDP.alignment), zone: .fSegment),
            .allocate(file: Self.tablesFile, alignment: 64, zone: .high),
        ]
        for (offset, size) in Self.fadtPointers {
            script.append(.addPointer(destination: Self.tablesFile, source: Self.tablesFile, offset: UInt32(fadt + offset), size: size))
        }
        for i in 0..<2 {
            script.append(.addPointer(destination: Self.tablesFile, source: Self.tablesFile,
                                      offset: UInt32(xsdt + Self.xsdtEntries + 8 * i), size: 8))
        }
        // Checksums after every pointer into the table they cover has been patched.
        for signature in ["DSDT", "FACP", "APIC", "XSDT"] {
            guard let start = offsets[signature], let length = lengths[signature] else { continue }
            blob[start + ACPITable.checksumOffset] = 0
            script.append(.addChecksum(file: Self.tablesFile, offset: UInt32(start + ACPITable.checksumOffset),
                                       start: UInt32(start), length: UInt32(length)))
        }
        script.append(.addPointer(destination: Self.rsdpFile, source: Self.tablesFile, offset: UInt32(Self.rsdpXSDTAddress), size: 8))
        script.append(.addChecksum(file: Self.rsdpFile, offset: UInt32(Self.rsdpChecksum), start: 0, length: 20))
        script.append(.addChecksum(file: Self.rsdpFile, offset: UInt32(Self.rsdpExtendedChecksum), start: 0, length: UInt32(RSDP.size)))

        tables = blob
        self.rsdp = rsdp
        loader = script.flatMap(\.encoded)
    }
}
