/// Where the firmware tables go in guest-physical memory: three page-aligned regions, each
/// reported to the guest in e820 as a whole (so nothing there is ever handed out as RAM).
///
/// The default, `pcBIOSArea`, fills the legacy BIOS area 0xE0000-0xFFFFF, which the flat-boot
/// structures (0x500-0x5FF, 0x9000-0xEFFF) never touch, which the boot loaders' placement never
/// hands out (e820 does not call it usable), and which Linux reserves whatever e820 says:
///
///     0xE0000-0xE0FFF  ACPI NVS      the FACS (the OS writes its global lock and waking vector)
///     0xE1000-0xEFFFF  ACPI tables   DSDT, FADT, MADT, XSDT (reclaimable once the OS has read them)
///     0xF0000-0xFFFFF  reserved      RSDP, MP floating pointer, MP configuration table
///
/// The RSDP and MP floating pointer go in the F segment because that is the one area both are
/// searched in: OSes look for "RSD PTR " in 0xE0000-0xFFFFF and for "_MP_" in the first KiB of
/// the EBDA, the last KiB of base memory or 0xF0000-0xFFFFF. The F segment needs no agreement with
/// the e820 map about where base memory ends, which the last-KiB choice (0x9FC00) would.
public struct FirmwarePlacement: Sendable, Equatable {
    /// ACPI NVS: the FACS at its start.
    public var nvs: Range<UInt64>
    /// ACPI reclaimable: the description tables, each 16-byte aligned.
    public var tables: Range<UInt64>
    /// Reserved: the RSDP at its start, then the MP floating pointer and configuration table.
    public var pointers: Range<UInt64>

    public init(nvs: Range<UInt64>, tables: Range<UInt64>, pointers: Range<UInt64>) {
        self.nvs = nvs
        self.tables = tables
        self.pointers = pointers
    }

    public static let pcBIOSArea = FirmwarePlacement(
        nvs: 0xE0000..<0xE1000, tables: 0xE1000..<0xF0000, pointers: 0xF0000..<0x10_0000)

    /// Where OSes search for the RSDP (ACPI 6.5, 5.2.5.1).
    public static let rsdpSearchArea: Range<UInt64> = 0xE0000..<0x10_0000
    /// The MP floating pointer areas this placement can use: the BIOS ROM area or the last KiB of
    /// 640 KiB base memory (MP 1.4, 4.0).
    public static let mpSearchAreas: [Range<UInt64>] = [0xF0000..<0x10_0000, 0x9FC00..<0xA0000]

    func validate() throws(FirmwareError) {
        let regions = [("NVS", nvs), ("tables", tables), ("pointers", pointers)]
        for (name, range) in regions {
            guard !range.isEmpty, range.lowerBound % MemoryMap.pageSize == 0, range.upperBound % MemoryMap.pageSize == 0 else {
                throw .invalidPlacement("the \(name) region \(hex(range.lowerBound))-\(hex(range.upperBound)) is not whole pages")
            }
            guard range.upperBound <= MemoryMap.fourGiB else {
                throw .invalidPlacement("the \(name) region ends above 4 GiB, beyond the 32-bit table pointers")
            }
        }
        for (i, (a, first)) in regions.enumerated() {
            for (b, second) in regions[(i + 1)...] where first.overlaps(second) {
                throw .invalidPlacement("the \(a) and \(b) regions overlap")
            }
        }
        guard Self.rsdpSearchArea.contains(pointers.lowerBound) else {
            throw .invalidPlacement("the RSDP at \(hex(pointers.lowerBound)) is outside the 0xe0000-0xfffff area OSes search")
        }
    }
}
