/// The BIOS-style (e820) memory map a guest is told about: which guest-physical ranges are RAM it
/// may use and which it must leave alone. Derived from `MemoryMap`, so it always agrees with what
/// is actually backed; every boot protocol (zero page, PVH memmap, multiboot mmap) reports it.
public struct E820Map: Sendable, Equatable {
    /// The e820 type codes, as the ACPI spec and every boot protocol number them.
    public enum Kind: UInt32, Sendable, Equatable {
        case usable = 1
        case reserved = 2
        case acpi = 3
        case nvs = 4
        case unusable = 5
    }

    public struct Entry: Sendable, Equatable {
        public var start: UInt64
        public var size: UInt64
        public var kind: Kind

        public init(start: UInt64, size: UInt64, kind: Kind) {
            self.start = start
            self.size = size
            self.kind = kind
        }

        public var end: UInt64 { start + size }
    }

    /// Sorted, non-overlapping, adjacent entries of one kind merged.
    public private(set) var entries: [Entry]

    /// Conventional memory ends where the EBDA begins; 0x9FC00-0xFFFFF is EBDA, VGA and BIOS area.
    public static let conventionalEnd: UInt64 = 0x9_FC00
    public static let highMemoryStart: UInt64 = 0x10_0000
    /// MMIO-hole pieces the platform occupies even without devices: the in-kernel IOAPIC and
    /// LAPIC, and the pages KVM takes for its identity map and TSS (`MemoryMap.kvm*Address`).
    public static let platformRanges: [Range<UInt64>] = [
        0xFEC0_0000..<0xFEC0_1000,
        0xFEE0_0000..<0xFEE0_1000,
        MemoryMap.kvmIdentityMapAddress..<MemoryMap.kvmTSSAddress + 0x3000,
    ]

    public init(memoryMap: MemoryMap) {
        entries = []
        for region in memoryMap.regions {
            switch region.kind {
            case .ram: mark(region.start..<region.end, as: .usable)
            case .rom: mark(region.start..<region.end, as: .reserved)
            case .mmio: break
            }
        }
        mark(Self.conventionalEnd..<Self.highMemoryStart, as: .reserved)
        for range in Self.platformRanges { mark(range, as: .reserved) }
    }

    /// Makes `range` of type `kind`, overriding whatever it covered (ACPI tables carved out of
    /// usable RAM become `.acpi`; a device window in the hole becomes `.reserved`).
    public mutating func mark(_ range: Range<UInt64>, as kind: Kind) {
        guard !range.isEmpty else { return }
        var result: [Entry] = []
        for e in entries {
            if e.end <= range.lowerBound || e.start >= range.upperBound {
                result.append(e)
                continue
            }
            if e.start < range.lowerBound { result.append(Entry(start: e.start, size: range.lowerBound - e.start, kind: e.kind)) }
            if e.end > range.upperBound { result.append(Entry(start: range.upperBound, size: e.end - range.upperBound, kind: e.kind)) }
        }
        result.append(Entry(start: range.lowerBound, size: range.upperBound - range.lowerBound, kind: kind))
        result.sort { $0.start < $1.start }
        var merged: [Entry] = []
        for e in result {
            if let last = merged.last, last.kind == e.kind, last.end == e.start {
                merged[merged.count - 1].size += e.size
            } else {
                merged.append(e)
            }
        }
        entries = merged
    }

    public var usableRanges: [Range<UInt64>] {
        entries.filter { $0.kind == .usable }.map { $0.start..<$0.end }
    }

    /// Whether all of `range` is usable RAM.
    public func isUsable(_ range: Range<UInt64>) -> Bool {
        entries.contains { $0.kind == .usable && $0.start <= range.lowerBound && range.upperBound <= $0.end }
    }

    /// The end of the usable RAM that starts at 1 MiB (what multiboot calls upper memory and
    /// where every 32-bit loader's allocations have to stay), or 1 MiB if there is none.
    public var highMemoryEnd: UInt64 {
        entries.first { $0.kind == .usable && $0.start <= Self.highMemoryStart && Self.highMemoryStart < $0.end }?.end
            ?? Self.highMemoryStart
    }
}
