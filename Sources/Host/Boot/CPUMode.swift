import CKVM

/// The processor mode a flat image is entered in, and the architectural state for it.
///
/// Flat-boot contract (examples/guests rely on it): every vCPU starts at the entry point at once,
/// RFLAGS = 0x2, RSP = 0, RDI = vCPU index, RSI = vCPU count. real: all segments base 0, IP = entry.
/// protected: flat 32-bit code 0x08 and data 0x10, paging off. long: 64-bit code 0x08, data 0x10,
/// identity map of the first 4 GiB in 2 MiB pages (PML4 at 0x9000), GDT at 0x500.
public enum CPUMode: String, Sendable, CaseIterable {
    case real, protected, long

    public var defaultLoadAddress: UInt64 { self == .real ? 0x7C00 : 0x10_0000 }

    static let gdtAddress: UInt64 = 0x500
    static let pml4Address: UInt64 = 0x9000
    static let pageTablesEnd: UInt64 = 0xF000

    /// Guest-physical ranges the VMM writes for this mode; images must not overlap them.
    var reservedRanges: [(name: String, start: UInt64, end: UInt64)] {
        switch self {
        case .real: []
        case .protected: [("GDT", Self.gdtAddress, Self.gdtAddress + 0x100)]
        case .long: [("GDT", Self.gdtAddress, Self.gdtAddress + 0x100), ("page tables", Self.pml4Address, Self.pageTablesEnd)]
        }
    }

    static let code64: UInt64 = 0x00AF_9B00_0000_FFFF
    static let code32: UInt64 = 0x00CF_9B00_0000_FFFF
    static let data32: UInt64 = 0x00CF_9300_0000_FFFF

    /// Writes the GDT and page tables this mode needs.
    func writeTables(into memory: GuestMemory) throws(GuestMemoryError) {
        switch self {
        case .real: return
        case .protected:
            for (i, d) in [0, Self.code32, Self.data32].enumerated() { try memory.writeValue(d, at: Self.gdtAddress + UInt64(i * 8)) }
        case .long:
            for (i, d) in [0, Self.code64, Self.data32].enumerated() { try memory.writeValue(d, at: Self.gdtAddress + UInt64(i * 8)) }
            let pdpt = Self.pml4Address + 0x1000
            try memory.writeValue(pdpt | 0x3, at: Self.pml4Address)
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

    /// Sets the vCPU's registers for entry at `entry`.
    func enter(_ cpu: VCPUFD, entry: UInt64, vcpuCount: UInt32) throws(KVMError) {
        var s = try cpu.specialRegisters()
        switch self {
        case .real:
            for keyPath in [\kvm_sregs.cs, \.ds, \.es, \.fs, \.gs, \.ss] {
                s[keyPath: keyPath].base = 0
                s[keyPath: keyPath].selector = 0
            }
        case .protected, .long:
            var code = kvm_segment()
            code.base = 0
            code.limit = 0xFFFF_FFFF
            code.selector = 0x08
            code.type = 11
            code.present = 1
            code.s = 1
            code.g = 1
            code.db = self == .long ? 0 : 1
            code.l = self == .long ? 1 : 0
            var data = code
            data.selector = 0x10
            data.type = 3
            data.db = 1
            data.l = 0
            s.cs = code
            s.ds = data; s.es = data; s.fs = data; s.gs = data; s.ss = data
            s.gdt.base = Self.gdtAddress
            s.gdt.limit = 23
            if self == .long {
                s.cr3 = Self.pml4Address
                s.cr4 = 0x20 | 0x200 | 0x400         // PAE, OSFXSR, OSXMMEXCPT
                s.cr0 = 0x8001_0033                  // PG, WP, NE, ET, MP, PE
                s.efer = 0x500                       // LMA, LME
            } else {
                s.cr0 = 0x11                         // ET, PE
            }
        }
        try cpu.setSpecialRegisters(s)
        var r = kvm_regs()
        r.rip = entry
        r.rflags = 0x2
        r.rdi = UInt64(cpu.index)
        r.rsi = UInt64(vcpuCount)
        try cpu.setRegisters(r)
    }
}
