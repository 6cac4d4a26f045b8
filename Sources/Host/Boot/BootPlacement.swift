/// The one allocator every boot loader lays a guest out with. It starts from the e820's usable RAM
/// (so the firmware tables, the BIOS area and the MMIO hole are never free), knows every range
/// already occupied by name (the kernel's segments, modules, the initrd, the boot structures, the
/// page tables), and hands out free RAM for whatever the loader builds after the image is in place.
/// Nothing sits at a fixed address except page 0 (the real-mode IVT and BIOS data area, where the
/// boot GDT lives), so a kernel may occupy any other usable RAM.
///
/// Policy: boot structures (zero page, start info, multiboot information, memory maps, command
/// lines, page tables) take the lowest fit in conventional memory, where boot loaders have always
/// put them and where no kernel's bss or decompression reaches, falling back to the highest fit
/// below 4 GiB; initrds and modules take the highest fit from 1 MiB up, as far from the kernel as
/// possible.
struct BootPlacement {
    struct Occupant: Equatable {
        let name: String
        let range: Range<UInt64>
    }

    /// Page 0 holds the real-mode IVT and BIOS data area, and the boot GDT at 0x500.
    static let pageZero = Occupant(name: "real-mode IVT, BIOS data area and boot GDT", range: 0..<MemoryMap.pageSize)

    /// Free usable RAM: sorted, disjoint, non-empty.
    private(set) var free: [Range<UInt64>]
    /// What the loader has placed so far, in placement order.
    private(set) var occupants: [Occupant] = []
    let usable: [Range<UInt64>]

    init(e820: E820Map) {
        usable = e820.usableRanges
        free = usable
        occupy(Self.pageZero)
    }

    /// Marks `occupant` taken whatever was there (a fixed range the loader must honour).
    mutating func occupy(_ occupant: Occupant) {
        occupants.append(occupant)
        let range = occupant.range
        guard !range.isEmpty else { return }
        var result: [Range<UInt64>] = []
        for f in free {
            if f.upperBound <= range.lowerBound || f.lowerBound >= range.upperBound {
                result.append(f)
                continue
            }
            if f.lowerBound < range.lowerBound { result.append(f.lowerBound..<range.lowerBound) }
            if f.upperBound > range.upperBound { result.append(range.upperBound..<f.upperBound) }
        }
        free = result
    }

    /// Why `range` cannot be claimed, or nil when all of it is free usable RAM.
    func conflict(for range: Range<UInt64>) -> String? {
        if let o = occupants.first(where: { $0.range.overlaps(range) }) {
            return "overlaps the \(o.name) at \(describe(o.range))"
        }
        guard usable.contains(where: { $0.lowerBound <= range.lowerBound && range.upperBound <= $0.upperBound }) else {
            return "is not in usable guest RAM (usable: \(usable.map(describe).joined(separator: ", ")))"
        }
        return nil
    }

    /// Occupies a fixed `range` (a kernel segment), or says why it cannot be: not usable RAM, or
    /// already taken (and by what).
    mutating func claim(_ range: Range<UInt64>, name: String) -> String? {
        if let reason = conflict(for: range.isEmpty ? range.lowerBound..<range.lowerBound + 1 : range) { return reason }
        occupy(Occupant(name: name, range: range))
        return nil
    }

    /// The highest `alignment`-aligned start (a power of two) whose `size` bytes are free and lie
    /// within `window`; the range is then occupied by `name`. A zero size still gets one byte.
    mutating func takeHighest(_ name: String, size: UInt64, alignment: UInt64 = MemoryMap.pageSize,
                              within window: Range<UInt64>) -> UInt64? {
        guard alignment > 0, alignment & (alignment - 1) == 0 else { return nil }
        let needed = max(size, 1)
        for f in free.reversed() {
            let low = max(f.lowerBound, window.lowerBound), top = min(f.upperBound, window.upperBound)
            guard top > low, top - low >= needed else { continue }
            let start = (top - needed) & ~(alignment - 1)
            guard start >= low else { continue }
            occupy(Occupant(name: name, range: start..<start + needed))
            return start
        }
        return nil
    }

    /// The lowest `alignment`-aligned start whose `size` bytes are free within `window`.
    mutating func takeLowest(_ name: String, size: UInt64, alignment: UInt64 = 16, within window: Range<UInt64>) -> UInt64? {
        guard alignment > 0, alignment & (alignment - 1) == 0 else { return nil }
        let needed = max(size, 1)
        for f in free {
            let low = max(f.lowerBound, window.lowerBound), top = min(f.upperBound, window.upperBound)
            guard top > low else { continue }
            let (sum, overflow) = low.addingReportingOverflow(alignment - 1)
            guard !overflow else { continue }
            let start = sum & ~(alignment - 1)
            guard start < top, top - start >= needed else { continue }
            occupy(Occupant(name: name, range: start..<start + needed))
            return start
        }
        return nil
    }

    /// Conventional memory a boot structure may use: past page 0, below the EBDA.
    static let conventional: Range<UInt64> = MemoryMap.pageSize..<E820Map.conventionalEnd
    /// What 32-bit boot pointers reach.
    static let below4GiB: Range<UInt64> = 0..<MemoryMap.fourGiB
    /// Where modules and initrds go: from 1 MiB up, below `limit`.
    static func highMemory(below limit: UInt64) -> Range<UInt64> { E820Map.highMemoryStart..<max(limit, E820Map.highMemoryStart) }

    /// A boot structure's place: the lowest fit in conventional memory, else the highest below
    /// 4 GiB. Throws only when no usable RAM below 4 GiB has room left.
    mutating func placeBootData(_ name: String, size: Int, alignment: UInt64 = 16) throws(PlacementError) -> UInt64 {
        let bytes = UInt64(max(size, 0))
        if let at = takeLowest(name, size: bytes, alignment: alignment, within: Self.conventional) { return at }
        if let at = takeHighest(name, size: bytes, alignment: alignment, within: Self.below4GiB) { return at }
        throw exhausted(name, size: bytes, below: MemoryMap.fourGiB)
    }

    /// A module's or initrd's place: the highest page-aligned fit from 1 MiB up, below `limit`.
    mutating func placeHigh(_ name: String, size: UInt64, below limit: UInt64) throws(PlacementError) -> UInt64 {
        if let at = takeHighest(name, size: size, within: Self.highMemory(below: limit)) { return at }
        throw exhausted(name, size: size, below: limit)
    }

    func exhausted(_ name: String, size: UInt64, below limit: UInt64) -> PlacementError {
        let largest = free.map { min($0.upperBound, limit) > $0.lowerBound ? min($0.upperBound, limit) - $0.lowerBound : 0 }.max() ?? 0
        return PlacementError(what: name, size: size, limit: limit, largestFree: largest,
                              occupied: occupants.filter { $0 != Self.pageZero }.map { "\($0.name) \(describe($0.range))" })
    }
}

/// Guest RAM ran out while a loader placed `what`: says how much was asked for, the largest free
/// piece left, and what occupies the rest.
struct PlacementError: Error, CustomStringConvertible, Equatable {
    let what: String
    let size: UInt64
    let limit: UInt64
    let largestFree: UInt64
    let occupied: [String]

    var description: String {
        "no room for the \(what) (\(size) bytes) in usable RAM below \(hex(limit)): the largest free piece is \(largestFree) bytes"
            + (occupied.isEmpty ? "" : "; occupied: " + occupied.joined(separator: ", "))
    }
}

/// NUL-terminated strings packed into one block; each string's offset is known when it is added,
/// its guest address once the block is placed.
struct StringTable {
    private(set) var bytes: [UInt8] = []

    /// The offset of `text` in the table.
    mutating func add(_ text: String) -> UInt64 {
        let offset = UInt64(bytes.count)
        bytes += Array(text.utf8)
        bytes.append(0)
        return offset
    }
}
