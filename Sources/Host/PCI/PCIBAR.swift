import VeneerPluginABI

/// One base address register: its fixed shape (from the plugin) and the address the guest wrote.
///
/// The register keeps only address bits at or above the BAR's size (and the type bits read back
/// fixed), which is what makes BAR sizing work: after all ones are written the register reads
/// ~(size - 1) | type bits.
struct PCIBAR: Sendable, Equatable {
    enum Space: Sendable, Equatable {
        case io, memory32, memory64
    }

    let space: Space
    let prefetchable: Bool
    let size: UInt64
    /// The region id the plugin's `io` sees for accesses through this BAR.
    let region: UInt32
    /// As programmed: aligned to `size`; for I/O and 32-bit memory, below 2^32.
    private(set) var address: UInt64 = 0

    static let maxIOSize: UInt64 = 256
    static let maxMemory32Size: UInt64 = 1 << 31
    static let maxMemory64Size: UInt64 = 1 << 63

    /// The BAR a request slot describes, or why it is malformed.
    init(_ r: PCIFunctionRequest.BAR, index: Int) throws(PCIRegistrationError) {
        let known = UInt32(VENEER_PCI_BAR_IO | VENEER_PCI_BAR_MEM64 | VENEER_PCI_BAR_PREFETCH)
        guard r.flags & ~known == 0 else { throw .invalid("BAR\(index) has unknown flags \(hex(r.flags))") }
        let io = r.flags & UInt32(VENEER_PCI_BAR_IO) != 0
        let wide = r.flags & UInt32(VENEER_PCI_BAR_MEM64) != 0
        prefetchable = r.flags & UInt32(VENEER_PCI_BAR_PREFETCH) != 0
        guard !(io && (wide || prefetchable)) else { throw .invalid("BAR\(index): an I/O BAR cannot be 64-bit or prefetchable") }
        space = io ? .io : wide ? .memory64 : .memory32
        let (low, high): (UInt64, UInt64) = switch space {
        case .io: (4, Self.maxIOSize)
        case .memory32: (16, Self.maxMemory32Size)
        case .memory64: (16, Self.maxMemory64Size)
        }
        guard r.size.nonzeroBitCount == 1, (low...high).contains(r.size) else {
            throw .invalid("BAR\(index): size \(hex(r.size)) is not a power of two in \(hex(low))...\(hex(high))")
        }
        size = r.size
        region = r.region
    }

    /// The fixed low bits: I/O space indicator, memory type, prefetchable.
    var typeBits: UInt32 {
        switch space {
        case .io: 0x1
        case .memory32: prefetchable ? 0x8 : 0
        case .memory64: 0x4 | (prefetchable ? 0x8 : 0)
        }
    }

    /// The writable bits of the low dword.
    private var lowMask: UInt32 { UInt32(truncatingIfNeeded: ~(size - 1)) & (space == .io ? ~0x3 : ~0xF) }

    /// What the BAR's first dword reads.
    var lowRegister: UInt32 { UInt32(truncatingIfNeeded: address) | typeBits }
    /// What the second dword of a 64-bit BAR reads.
    var highRegister: UInt32 { UInt32(truncatingIfNeeded: address >> 32) }

    mutating func writeLow(_ value: UInt32) {
        address = (address & 0xFFFF_FFFF_0000_0000) | UInt64(value & lowMask)
    }

    mutating func writeHigh(_ value: UInt32) {
        guard space == .memory64 else { return }
        address = (address & 0xFFFF_FFFF) | ((UInt64(value) << 32) & ~(size - 1))
    }

    mutating func clear() { address = 0 }

    var isIO: Bool { space == .io }

    /// The range the BAR decodes once its space is enabled, if the CPU can reach it: I/O ports
    /// stop at 0xFFFF, whatever the 32-bit register holds.
    var window: PCIWindow? {
        switch space {
        case .io: address + size <= 0x10000 ? PCIWindow(base: address, length: size) : nil
        case .memory32: PCIWindow(base: address, length: size)
        // A BAR ending exactly at 2^64 is decodable on paper but has no representable end.
        case .memory64: address <= UInt64.max - size ? PCIWindow(base: address, length: size) : nil
        }
    }
}

/// Where a mapped BAR sits.
struct PCIWindow: Sendable, Equatable {
    var base: UInt64
    var length: UInt64
}
