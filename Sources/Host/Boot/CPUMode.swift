/// The processor mode a guest is entered in, and the tables (GDT, page tables) that mode needs.
///
/// Flat-boot contract (examples/guests rely on it): every vCPU starts at the entry point at once,
/// RFLAGS = 0x2, RSP = 0, RDI = vCPU index, RSI = vCPU count. real: all segments base 0, IP = entry.
/// protected: flat 32-bit code 0x08 and data 0x10, paging off. long: 64-bit code 0x08, data 0x10,
/// identity map of the first 4 GiB in 2 MiB pages (PML4 at 0x9000), GDT at 0x500.
/// The boot-protocol loaders reuse these tables; Linux's protocol moves the selectors (`BootSelectors`).
public enum CPUMode: String, Sendable, CaseIterable {
    case real, protected, long

    public var defaultLoadAddress: UInt64 { self == .real ? 0x7C00 : 0x10_0000 }

    static let gdtAddress: UInt64 = 0x500
    static let gdtEnd: UInt64 = 0x600
    static let pml4Address: UInt64 = 0x9000
    static let pageTablesEnd: UInt64 = 0xF000
    /// PML4, PDPT and four page directories.
    static let pageTablesSize = Int(pageTablesEnd - pml4Address)

    /// Guest-physical ranges the VMM writes for this mode; images must not overlap them.
    var reservedRanges: [(name: String, start: UInt64, end: UInt64)] {
        switch self {
        case .real: []
        case .protected: [("GDT", Self.gdtAddress, Self.gdtEnd)]
        case .long: [("GDT", Self.gdtAddress, Self.gdtEnd), ("page tables", Self.pml4Address, Self.pageTablesEnd)]
        }
    }

    static let code64: UInt64 = 0x00AF_9B00_0000_FFFF
    static let code32: UInt64 = 0x00CF_9B00_0000_FFFF
    static let data32: UInt64 = 0x00CF_9300_0000_FFFF

    /// Writes the GDT (flat code and data descriptors at `selectors`) and, for long mode, the
    /// identity map of the first 4 GiB at `pageTables` (`pageTablesSize` bytes, page aligned).
    func writeTables(into memory: GuestMemory, selectors: BootSelectors = .flat,
                     pageTables: UInt64 = pml4Address) throws(GuestMemoryError) {
        guard self != .real else { return }
        var gdt = [UInt64](repeating: 0, count: selectors.gdtEntries)
        gdt[Int(selectors.code / 8)] = self == .long ? Self.code64 : Self.code32
        gdt[Int(selectors.data / 8)] = Self.data32
        for (i, d) in gdt.enumerated() { try memory.writeValue(d, at: Self.gdtAddress + UInt64(i * 8)) }
        guard self == .long else { return }
        let pdpt = pageTables + 0x1000
        // RAM a loader placed the tables in may hold anything (a reboot, a module's old bytes):
        // the PML4 and PDPT entries not written below must be zero; the PDs are filled whole.
        try memory.load([UInt8](repeating: 0, count: 0x2000), at: pageTables)
        try memory.writeValue(pdpt | 0x3, at: pageTables)
        for gib in 0..<UInt64(4) {
            let pd = pdpt + 0x1000 * (gib + 1)
            try memory.writeValue(pd | 0x3, at: pdpt + gib * 8)
            for entry in 0..<UInt64(512) {
                let address = (gib << 30) | (entry << 21)
                try memory.writeValue(address | 0x83, at: pd + entry * 8) // present, writable, 2 MiB
            }
        }
    }
}

/// Where the boot GDT puts its flat code and data descriptors. The flat contract (and PVH and
/// multiboot, which leave the selectors unspecified) use 0x08/0x10; Linux's 32- and 64-bit boot
/// protocols require __BOOT_CS 0x10 and __BOOT_DS 0x18.
public struct BootSelectors: Sendable, Equatable {
    public var code: UInt16
    public var data: UInt16

    public static let flat = BootSelectors(code: 0x08, data: 0x10)
    public static let linux = BootSelectors(code: 0x10, data: 0x18)

    /// Null descriptors fill the unused slots below the highest selector.
    var gdtEntries: Int { Int(max(code, data) / 8) + 1 }
    var gdtLimit: UInt16 { UInt16(gdtEntries * 8 - 1) }
}
