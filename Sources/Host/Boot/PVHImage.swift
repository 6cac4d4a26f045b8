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
    }

    public func load(into memory: GuestMemory, e820: E820Map, rsdp: UInt64? = nil) throws(BootError) -> BootEntry {
        let file = try BootFile.read(path, role: "boot image", key: "boot.kernel", limit: memory.map.ramBytes)
        let elf = try ELFImage(file)
        let entry = try Self.phys32Entry(elf, file)
        let segments = try elf.loadSegments(file)
        guard segments.contains(where: { $0.memorySize > 0 && $0.address <= entry && entry - $0.address < $0.memorySize }) else {
            throw file.error("the PVH entry \(hex(entry)) is not inside any PT_LOAD segment")
        }
        guard !cmdline.utf8.contains(0) else { throw file.error("the command line contains a NUL byte") }
        var strings = StringTable()
        let cmdlineOffset = strings.add(cmdline)

        // The segments first (nothing is written unless all are sound), then the initrd clear of
        // them, then the start info, module list, memory map and command line in what is left.
        var placement = BootPlacement(e820: e820)
        try LoadSegment.loadAll(segments, from: file, into: memory, placement: &placement, addressLimit: MemoryMap.fourGiB)
        var module: (address: UInt64, size: UInt64)?
        if let initrd {
            let rd = try BootFile.read(initrd, role: "initrd", key: "boot.initrd", limit: memory.map.ramBytes)
            guard rd.size > 0 else { throw rd.error("the initrd is empty") }
            let at: UInt64
            do { at = try placement.placeHigh("initrd", size: rd.size, below: MemoryMap.fourGiB) } catch { throw rd.error(error.description) }
            do { try memory.load(rd.bytes, at: at) } catch { throw rd.error(error.description) }
            module = (at, rd.size)
        }
        let infoAddress: UInt64, modlistAddress: UInt64?, memmapAddress: UInt64, stringsAddress: UInt64
        do {
            infoAddress = try placement.placeBootData("PVH start info", size: StartInfo.size, alignment: 8)
            modlistAddress = module == nil ? nil : try placement.placeBootData("PVH module list", size: StartInfo.modlistEntrySize, alignment: 8)
            memmapAddress = try placement.placeBootData("PVH memory map", size: e820.entries.count * StartInfo.memmapEntrySize, alignment: 8)
            stringsAddress = try placement.placeBootData("PVH command line", size: strings.bytes.count, alignment: 1)
        } catch {
            throw file.error(error.description)
        }

        var info = LittleEndianBuffer(count: StartInfo.size)
        info.put(StartInfo.magic, at: 0)
        info.put(StartInfo.version, at: 4)
        info.put(stringsAddress + cmdlineOffset, at: StartInfo.cmdlinePaddr)
        info.put(rsdp ?? 0, at: StartInfo.rsdpPaddr)
        var modlist = LittleEndianBuffer(count: StartInfo.modlistEntrySize)
        if let module, let modlistAddress {
            info.put(UInt32(1), at: StartInfo.nrModules)
            info.put(modlistAddress, at: StartInfo.modlistPaddr)
            modlist.put(module.address, at: 0)
            modlist.put(module.size, at: 8)
        }
        info.put(memmapAddress, at: StartInfo.memmapPaddr)
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
            try memory.load(info.bytes, at: infoAddress)
            if let modlistAddress { try memory.load(modlist.bytes, at: modlistAddress) }
            try memory.load(memmap.bytes, at: memmapAddress)
            try memory.load(strings.bytes, at: stringsAddress)
        } catch {
            throw file.error(error.description)
        }
        var state = EntryState(mode: .protected, rip: entry)
        state.rbx = infoAddress
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
