/// The guest-physical address space of a PC-compatible VM: where RAM, ROM and MMIO holes are.
/// A pure value: the loaders, the e820 table and `GuestMemory` all read it, nothing else decides it.
public struct MemoryMap: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Guest RAM, backed by host memory.
        case ram
        /// Read-only memory (firmware), backed by host memory the guest cannot write.
        case rom
        /// No memory: accesses exit to the VMM and reach device plugins (or KVM's irqchip).
        case mmio
    }

    public struct Region: Sendable, Equatable {
        public let name: String
        public let start: UInt64
        public let size: UInt64
        public let kind: Kind

        public var end: UInt64 { start + size }

        public func contains(_ address: UInt64, length: UInt64 = 1) -> Bool {
            address >= start && length <= size && address - start <= size - length
        }
    }

    public enum LayoutError: Error, CustomStringConvertible, Sendable, Equatable {
        case ramTooSmall(UInt64)
        case ramTooLarge(UInt64)
        case notPageAligned(String, UInt64)
        case overlap(String, String)

        public var description: String {
            switch self {
            case .ramTooSmall(let b): "memory of \(b) bytes is too small (at least 2 MiB)"
            case .ramTooLarge(let b): "memory of \(b) bytes exceeds the supported 1 TiB"
            case .notPageAligned(let name, let v): "\(name) at \(hex(v)) is not 4 KiB aligned"
            case .overlap(let a, let b): "memory regions \(a) and \(b) overlap"
            }
        }
    }

    /// Sorted by start, non-overlapping.
    public let regions: [Region]

    public static let pageSize: UInt64 = 4096
    /// RAM stops here below 4 GiB; the rest of the 32-bit space is the MMIO hole (PCI BARs,
    /// IOAPIC at 0xFEC00000, LAPIC at 0xFEE00000, KVM's TSS and identity-map pages).
    public static let lowRAMLimit: UInt64 = 0xC000_0000
    public static let fourGiB: UInt64 = 0x1_0000_0000
    public static let kvmIdentityMapAddress: UInt64 = 0xFFFB_C000
    public static let kvmTSSAddress: UInt64 = 0xFFFB_D000

    public init(regions: [Region]) throws(LayoutError) {
        let sorted = regions.sorted { $0.start < $1.start }
        for r in sorted where r.start % Self.pageSize != 0 || r.size % Self.pageSize != 0 {
            throw .notPageAligned(r.name, r.start)
        }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.end > b.start {
            throw .overlap(a.name, b.name)
        }
        self.regions = sorted
    }

    /// The standard layout for `ramBytes` of RAM, split around the 32-bit MMIO hole, plus any ROMs.
    public static func pc(ramBytes: UInt64, roms: [Region] = []) throws(LayoutError) -> MemoryMap {
        guard ramBytes >= 2 << 20 else { throw .ramTooSmall(ramBytes) }
        guard ramBytes <= 1 << 40 else { throw .ramTooLarge(ramBytes) }
        let size = (ramBytes + pageSize - 1) & ~(pageSize - 1)
        var regions = [Region(name: "ram-low", start: 0, size: min(size, lowRAMLimit), kind: .ram)]
        if size > lowRAMLimit {
            regions.append(Region(name: "ram-high", start: fourGiB, size: size - lowRAMLimit, kind: .ram))
        }
        // The hole is described as MMIO so that lookups can name it; ROMs inside it are carved out.
        var holeStart = lowRAMLimit
        for rom in roms.sorted(by: { $0.start < $1.start }) where rom.start >= lowRAMLimit && rom.end <= fourGiB {
            if rom.start > holeStart {
                regions.append(Region(name: "mmio-hole", start: holeStart, size: rom.start - holeStart, kind: .mmio))
            }
            regions.append(rom)
            holeStart = rom.end
        }
        if holeStart < fourGiB {
            regions.append(Region(name: "mmio-hole", start: holeStart, size: fourGiB - holeStart, kind: .mmio))
        }
        regions += roms.filter { !($0.start >= lowRAMLimit && $0.end <= fourGiB) }
        return try MemoryMap(regions: regions)
    }

    public var ramBytes: UInt64 { regions.filter { $0.kind == .ram }.reduce(0) { $0 + $1.size } }

    /// The region that holds all of [address, address + length), if one does.
    public func region(containing address: UInt64, length: UInt64 = 1) -> Region? {
        var low = 0, high = regions.count
        while low < high {
            let mid = (low + high) / 2
            if regions[mid].end <= address { low = mid + 1 } else { high = mid }
        }
        guard low < regions.count, regions[low].contains(address, length: length) else { return nil }
        return regions[low]
    }
}
