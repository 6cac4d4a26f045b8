/// A kernel with a Multiboot (v1) header, booted as the Multiboot Specification 0.6.96 says:
/// loaded from its ELF program headers (or the header's a.out address fields), modules page
/// aligned in RAM, the multiboot information structure in EBX, EAX = 0x2BADB002, 32-bit protected
/// mode with paging off.
public struct MultibootImage: Sendable, Equatable {
    public struct Module: Sendable, Equatable {
        public var path: String
        /// The module's string in the module list (its "command line").
        public var cmdline: String

        public init(path: String, cmdline: String = "") {
            self.path = path
            self.cmdline = cmdline
        }
    }

    public var path: String
    public var cmdline: String
    public var modules: [Module]

    public init(path: String, cmdline: String = "", modules: [Module] = []) {
        self.path = path
        self.cmdline = cmdline
        self.modules = modules
    }

    static let bootloaderMagic: UInt32 = 0x2BAD_B002
    static let bootloaderName = "veneer"

    /// struct multiboot_info offsets and flags (multiboot.h of the specification).
    enum Info {
        static let size = 116
        static let flags = 0
        static let memLower = 4
        static let memUpper = 8
        static let cmdline = 16
        static let modsCount = 20
        static let modsAddress = 24
        static let mmapLength = 44
        static let mmapAddress = 48
        static let bootloaderName = 64
        static let hasMemory: UInt32 = 1 << 0
        static let hasCmdline: UInt32 = 1 << 2
        static let hasModules: UInt32 = 1 << 3
        static let hasMmap: UInt32 = 1 << 6
        static let hasBootloaderName: UInt32 = 1 << 9
        static let moduleEntrySize = 16
        /// An mmap entry: a size field (20, not counting itself), base, length, type.
        static let mmapEntrySize = 24
    }

    public func load(into memory: GuestMemory, e820: E820Map) throws(BootError) -> BootEntry {
        let file = try BootFile.read(path, role: "boot image", key: "boot.kernel", limit: memory.map.ramBytes)
        let header = try MultibootHeader(file)
        let segments: [LoadSegment]
        let entry: UInt64
        if let addresses = header.addresses {
            let aout = try header.aoutSegment(addresses, file)
            segments = [aout.segment]
            entry = aout.entry
        } else {
            guard ELFImage.hasMagic(file) else {
                throw file.error("the multiboot header has no address fields (flag bit 16) and the file is not ELF: nothing says where to load it")
            }
            let elf = try ELFImage(file)
            guard elf.entry != 0 else { throw file.error("the ELF file has no entry point (e_entry is 0)") }
            guard let physical = elf.physicalAddress(ofVirtual: elf.entry), physical < MemoryMap.fourGiB else {
                throw file.error("the ELF entry \(hex(elf.entry)) is not inside any PT_LOAD segment below 4 GiB")
            }
            segments = try elf.loadSegments(file)
            entry = physical
        }
        var strings = StringTable()
        func addString(_ text: String, _ what: String) throws(BootError) -> UInt64 {
            guard !text.utf8.contains(0) else { throw file.error("\(what) contains a NUL byte") }
            return strings.add(text)
        }
        let cmdlineOffset = try addString(cmdline, "the command line")
        let nameOffset = try addString(Self.bootloaderName, "the boot loader name")
        let moduleStringOffsets = try modules.enumerated().map { (i, module) throws(BootError) in
            try addString(module.cmdline, "the string of module \(i + 1)")
        }

        // The kernel first (its addresses are fixed), then the modules high, then the boot
        // information wherever RAM is left.
        var placement = BootPlacement(e820: e820)
        try LoadSegment.loadAll(segments, from: file, into: memory, placement: &placement, addressLimit: MemoryMap.fourGiB)
        var moduleRanges: [Range<UInt64>] = []
        for (i, module) in modules.enumerated() {
            let m = try BootFile.read(module.path, role: "module \(i + 1)", key: "boot.module[\(i)].path", limit: memory.map.ramBytes)
            // mod_end is a 32-bit exclusive end: the module must end below 4 GiB - 1 to be named.
            let at: UInt64
            do { at = try placement.placeHigh("module \(i + 1)", size: m.size, below: MemoryMap.fourGiB - 1) } catch { throw m.error(error.description) }
            do { try memory.load(m.bytes, at: at) } catch { throw m.error(error.description) }
            moduleRanges.append(at..<at + m.size)
        }
        let infoAddress: UInt64, modulesAddress: UInt64, mmapAddress: UInt64, stringsAddress: UInt64
        do {
            infoAddress = try placement.placeBootData("multiboot information", size: Info.size, alignment: 8)
            modulesAddress = try placement.placeBootData("multiboot module list", size: modules.count * Info.moduleEntrySize, alignment: 8)
            mmapAddress = try placement.placeBootData("multiboot memory map", size: e820.entries.count * Info.mmapEntrySize, alignment: 8)
            stringsAddress = try placement.placeBootData("multiboot strings", size: strings.bytes.count, alignment: 1)
        } catch {
            throw file.error(error.description)
        }

        var list = LittleEndianBuffer(count: modules.count * Info.moduleEntrySize)
        for (i, range) in moduleRanges.enumerated() {
            let at = i * Info.moduleEntrySize
            list.put(UInt32(range.lowerBound), at: at)
            list.put(UInt32(range.upperBound), at: at + 4)       // mod_end is exclusive, as GRUB sets it
            list.put(UInt32(stringsAddress + moduleStringOffsets[i]), at: at + 8)
        }

        // Lower memory is what lies below the EBDA; upper memory is the RAM from 1 MiB up to the
        // first hole, both in KiB.
        let lower = e820.entries.first { $0.kind == .usable && $0.start == 0 }.map { min($0.end, E820Map.conventionalEnd) } ?? 0
        let upper = e820.highMemoryEnd - E820Map.highMemoryStart
        var info = LittleEndianBuffer(count: Info.size)
        info.put(Info.hasMemory | Info.hasCmdline | Info.hasModules | Info.hasMmap | Info.hasBootloaderName, at: Info.flags)
        info.put(UInt32(lower / 1024), at: Info.memLower)
        info.put(UInt32(upper / 1024), at: Info.memUpper)
        info.put(UInt32(stringsAddress + cmdlineOffset), at: Info.cmdline)
        info.put(UInt32(modules.count), at: Info.modsCount)
        info.put(UInt32(modulesAddress), at: Info.modsAddress)
        info.put(UInt32(e820.entries.count * Info.mmapEntrySize), at: Info.mmapLength)
        info.put(UInt32(mmapAddress), at: Info.mmapAddress)
        info.put(UInt32(stringsAddress + nameOffset), at: Info.bootloaderName)
        var mmap = LittleEndianBuffer(count: e820.entries.count * Info.mmapEntrySize)
        for (i, e) in e820.entries.enumerated() {
            let at = i * Info.mmapEntrySize
            mmap.put(UInt32(Info.mmapEntrySize - 4), at: at)
            mmap.put(e.start, at: at + 4)
            mmap.put(e.size, at: at + 12)
            mmap.put(e.kind.rawValue, at: at + 20)
        }

        do {
            try CPUMode.protected.writeTables(into: memory)
            try memory.load(info.bytes, at: infoAddress)
            try memory.load(list.bytes, at: modulesAddress)
            try memory.load(mmap.bytes, at: mmapAddress)
            try memory.load(strings.bytes, at: stringsAddress)
        } catch {
            throw file.error(error.description)
        }
        var state = EntryState(mode: .protected, rip: entry)
        state.rax = UInt64(Self.bootloaderMagic)
        state.rbx = infoAddress
        return BootEntry(state: state)
    }
}
