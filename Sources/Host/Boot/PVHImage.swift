/// An ELF kernel with a Xen PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY), booted as Xen's PVH
/// protocol says: PT_LOAD segments at their physical addresses, an hvm_start_info (version 1, with
/// the memory map) in EBX, 32-bit protected mode with paging off. Linux built with CONFIG_PVH and
/// many unikernels boot this way with no decompressor or real-mode code.
public struct PVHImage: Sendable, Equatable {
    public var path: String
    public var cmdline: String
    public var initrd: String?

    public init(path: String, cmdline: String = "", initrd: String? = nil) {
        self.path = path
        self.cmdline = cmdline
        self.initrd = initrd
    }

    static let xenNoteName = Array("Xen".utf8)
    static let phys32EntryNote: UInt32 = 18

    /// xen/include/public/arch-x86/hvm/start_info.h
    enum StartInfo {
        static let magic: UInt32 = 0x336E_C578
        static let version: UInt32 = 1
        static let size = 56
        static let nrModules = 12
        static let modlistPaddr = 16
        static let cmdlinePaddr = 24
        static let rsdpPaddr = 32
        static let memmapPaddr = 40
        static let memmapEntries = 48
        static let modlistEntrySize = 32
        static let memmapEntrySize = 24
        /// The module list follows start_info in the same page.
        static let modlistOffset = 64
    }

    public func load(into memory: GuestMemory, e820: E820Map, rsdp: UInt64? = nil) throws(BootError) -> BootEntry {
        let file = try BootFile.read(path, role: "boot image", key: "boot.kernel", limit: memory.map.ramBytes)
        let elf = try ELFImage(file)
        let entry = try Self.phys32Entry(elf, file)
        let segments = try elf.loadSegments(file)
        guard segments.contains(where: { $0.memorySize > 0 && $0.address <= entry && entry - $0.address < $0.memorySize }) else {
            throw file.error("the PVH entry \(hex(entry)) is not inside any PT_LOAD segment")
        }
        let areas = BootLayout.areas(for: .protected)

        guard !cmdline.utf8.contains(0) else { throw file.error("the command line contains a NUL byte") }
        var strings = StringTable()
        guard let cmdlineAddress = strings.add(cmdline) else {
            throw file.error("the command line is \(cmdline.utf8.count) bytes, more than the \(strings.capacity - 1) Veneer has room for")
        }
        let maxEntries = BootLayout.memoryMapTableSize / StartInfo.memmapEntrySize
        guard e820.entries.count <= maxEntries else {
            throw file.error("the memory map has \(e820.entries.count) entries, more than the \(maxEntries) Veneer has room for")
        }

        // Check the segments first (nothing is written yet), then place the initrd clear of them.
        var placement = GuestPlacement(e820: e820, occupied: areas.map(\.range))
        let ranges = try LoadSegment.loadAll(segments, from: file, into: memory, e820: e820, areas: areas, addressLimit: MemoryMap.fourGiB)
        for r in ranges { placement.occupy(r) }
        var module: (address: UInt64, size: UInt64)?
        if let initrd {
            let rd = try BootFile.read(initrd, role: "initrd", key: "boot.initrd", limit: memory.map.ramBytes)
            guard rd.size > 0 else { throw rd.error("the initrd is empty") }
            guard let at = placement.takeHighest(size: rd.size, below: MemoryMap.fourGiB) else {
                throw rd.error("the initrd (\(rd.size) bytes) does not fit in the usable RAM below 4 GiB left beside the kernel")
            }
            do { try memory.load(rd.bytes, at: at) } catch { throw rd.error(error.description) }
            module = (at, rd.size)
        }

        var info = LittleEndianBuffer(count: BootLayout.bootInfoSize)
        info.put(StartInfo.magic, at: 0)
        info.put(StartInfo.version, at: 4)
        info.put(UInt64(cmdlineAddress), at: StartInfo.cmdlinePaddr)
        info.put(rsdp ?? 0, at: StartInfo.rsdpPaddr)
        if let module {
            let modlist = BootLayout.bootInfo + UInt64(StartInfo.modlistOffset)
            info.put(UInt32(1), at: StartInfo.nrModules)
            info.put(modlist, at: StartInfo.modlistPaddr)
            info.put(module.address, at: StartInfo.modlistOffset)
            info.put(module.size, at: StartInfo.modlistOffset + 8)
        }
        info.put(BootLayout.memoryMapTable, at: StartInfo.memmapPaddr)
        info.put(UInt32(e820.entries.count), at: StartInfo.memmapEntries)
        var memmap = LittleEndianBuffer(count: e820.entries.count * StartInfo.memmapEntrySize)
        for (i, e) in e820.entries.enumerated() {
            let at = i * StartInfo.memmapEntrySize
            memmap.put(e.start, at: at)
            memmap.put(e.size, at: at + 8)
            memmap.put(e.kind.rawValue, at: at + 16)
        }

        do {
            try CPUMode.protected.writeTables(into: memory)
            try memory.load(info.bytes, at: BootLayout.bootInfo)
            try memory.load(memmap.bytes, at: BootLayout.memoryMapTable)
            try memory.load(strings.bytes, at: strings.base)
        } catch {
            throw file.error(error.description)
        }
        var state = EntryState(mode: .protected, rip: entry)
        state.rbx = BootLayout.bootInfo
        return BootEntry(state: state)
    }

    /// The entry from the Xen PHYS32_ENTRY note: 4 bytes, or 8 (Linux writes a pointer-sized
    /// value) whose upper half must be zero, since it is entered in 32-bit mode.
    static func phys32Entry(_ elf: ELFImage, _ file: BootFile) throws(BootError) -> UInt64 {
        guard let note = try elf.notes(file).first(where: { $0.name == xenNoteName && $0.type == phys32EntryNote }) else {
            throw file.error("no Xen PHYS32_ENTRY note (type 18) in any PT_NOTE segment: not a PVH kernel")
        }
        let d = note.descriptor
        guard d.count == 4 || d.count == 8 else {
            throw file.error("the PHYS32_ENTRY note has a \(d.count)-byte descriptor, not 4 or 8")
        }
        var entry: UInt64 = 0
        for (i, b) in d.enumerated() { entry |= UInt64(b) << (8 * UInt64(i)) }
        guard entry < MemoryMap.fourGiB else {
            throw file.error("the PHYS32_ENTRY \(hex(entry)) is above 4 GiB, unreachable in 32-bit mode")
        }
        return entry
    }
}
