/// Where the boot-protocol loaders put what they build for the guest. Everything sits in
/// conventional memory below 1 MiB, where no kernel loads; initrds and modules go to the top of
/// RAM below 4 GiB (`GuestPlacement`).
enum BootLayout {
    /// Zero page (Linux), hvm_start_info plus module list (PVH), multiboot info plus module list.
    static let bootInfo: UInt64 = 0x7000
    static let bootInfoSize = 0x1000
    /// PVH memmap or multiboot mmap entries.
    static let memoryMapTable: UInt64 = 0x8000
    static let memoryMapTableSize = 0x1000
    /// Command lines and names, NUL-terminated.
    static let strings: UInt64 = 0x2_0000
    static let stringsSize = 0x1_0000

    struct Area {
        let name: String
        let range: Range<UInt64>
    }

    /// The ranges a loader writes for a guest entered in `mode`; kernel segments may not overlap them.
    static func areas(for mode: CPUMode) -> [Area] {
        var areas = [
            Area(name: "GDT", range: CPUMode.gdtAddress..<CPUMode.gdtEnd),
            Area(name: "boot information", range: bootInfo..<bootInfo + UInt64(bootInfoSize)),
            Area(name: "memory map table", range: memoryMapTable..<memoryMapTable + UInt64(memoryMapTableSize)),
            Area(name: "command lines", range: strings..<strings + UInt64(stringsSize)),
        ]
        if mode == .long { areas.append(Area(name: "page tables", range: CPUMode.pml4Address..<CPUMode.pageTablesEnd)) }
        return areas
    }
}

/// NUL-terminated strings packed into `BootLayout.strings`, each with the guest address it will have.
struct StringTable {
    private(set) var bytes: [UInt8] = []
    let base: UInt64 = BootLayout.strings
    let capacity = BootLayout.stringsSize

    /// The guest address of `text`, or nil when it (with its NUL) no longer fits.
    mutating func add(_ text: String) -> UInt64? {
        let utf8 = Array(text.utf8)
        guard utf8.count < capacity - bytes.count else { return nil }
        let address = base + UInt64(bytes.count)
        bytes += utf8
        bytes.append(0)
        return address
    }
}

/// Free usable RAM while a loader lays out a guest: starts as the e820's usable ranges from 1 MiB
/// up, loses every range the loader occupies, and hands out the highest aligned fit (where initrds
/// and modules go, as far from the kernel's decompression and bss as possible). Conventional memory
/// is never handed out: kernels claim it early (real-mode trampolines, BIOS conventions), as the
/// boot structures there already show.
struct GuestPlacement {
    private(set) var free: [Range<UInt64>]

    init(e820: E820Map, occupied: [Range<UInt64>] = []) {
        free = e820.usableRanges
        occupy(0..<E820Map.highMemoryStart)
        for r in occupied { occupy(r) }
    }

    mutating func occupy(_ range: Range<UInt64>) {
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

    /// The highest `alignment`-aligned start whose `size` bytes are free and end at or below
    /// `limit`; the range is then occupied. A zero size still gets a distinct byte.
    mutating func takeHighest(size: UInt64, below limit: UInt64, alignment: UInt64 = MemoryMap.pageSize) -> UInt64? {
        let needed = max(size, 1)
        for f in free.reversed() {
            let top = min(f.upperBound, limit)
            guard top >= needed, top - needed >= f.lowerBound else { continue }
            let start = (top - needed) & ~(alignment - 1)
            guard start >= f.lowerBound else { continue }
            occupy(start..<start + needed)
            return start
        }
        return nil
    }
}
