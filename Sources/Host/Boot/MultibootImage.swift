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
        /// The module list follows the info structure in the same page.
        static let modulesOffset = 0x100
        static let moduleEntrySize = 16
        /// An mmap entry: a size field (20, not counting itself), base, length, type.
        static let mmapEntrySize = 24
    }

    static var maxModules: Int { (BootLayout.bootInfoSize - Info.modulesOffset) / Info.moduleEntrySize }

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
        guard modules.count <= Self.maxModules else {
            throw file.error("\(modules.count) modules, more than the \(Self.maxModules) Veneer has room for")
        }
        var strings = StringTable()
        func addString(_ text: String, _ what: String) throws(BootError) -> UInt32 {
            guard !text.utf8.contains(0) else { throw file.error("\(what) contains a NUL byte") }
            guard let address = strings.add(text) else {
                throw file.error("the command lines together are longer than the \(strings.capacity) bytes Veneer has room for (at \(what))")
            }
            return UInt32(address)
        }
        let cmdlineAddress = try addString(cmdline, "the command line")
        let nameAddress = try addString(Self.bootloaderName, "the boot loader name")
        let maxEntries = BootLayout.memoryMapTableSize / Info.mmapEntrySize
        guard e820.entries.count <= maxEntries else {
            throw file.error("the memory map has \(e820.entries.count) entries, more than the \(maxEntries) Veneer has room for")
        }

        let areas = BootLayout.areas(for: .protected)
        var placement = GuestPlacement(e820: e820, occupied: areas.map(\.range))
        let ranges = try LoadSegment.loadAll(segments, from: file, into: memory, e820: e820, areas: areas, addressLimit: MemoryMap.fourGiB)
        for r in ranges { placement.occupy(r) }

        var info = LittleEndianBuffer(count: BootLayout.bootInfoSize)
        for (i, module) in modules.enumerated() {
            let role = "module \(i + 1)"
            let m = try BootFile.read(module.path, role: role, key: "boot.module[\(i)].path", limit: memory.map.ramBytes)
            // mod_end is a 32-bit exclusive end: the module must end below 4 GiB - 1 to be named.
            guard let at = placement.takeHighest(size: m.size, below: MemoryMap.fourGiB - 1) else {
                throw m.error("the module (\(m.size) bytes) does not fit in the usable RAM below 4 GiB left beside the kernel and earlier modules")
            }
            do { try memory.load(m.bytes, at: at) } catch { throw m.error(error.description) }
            let entryAt = Info.modulesOffset + i * Info.moduleEntrySize
            info.put(UInt32(at), at: entryAt)
            info.put(UInt32(at + m.size), at: entryAt + 4)       // mod_end is exclusive, as GRUB sets it
            info.put(try addString(module.cmdline, "the string of \(role)"), at: entryAt + 8)
        }

        // Lower memory is what lies below the EBDA; upper memory is the RAM from 1 MiB up to the
        // first hole, both in KiB.
        let lower = e820.entries.first { $0.kind == .usable && $0.start == 0 }.map { min($0.end, E820Map.conventionalEnd) } ?? 0
        let upper = e820.highMemoryEnd - E820Map.highMemoryStart
        info.put(Info.hasMemory | Info.hasCmdline | Info.hasModules | Info.hasMmap | Info.hasBootloaderName, at: Info.flags)
        info.put(UInt32(lower / 1024), at: Info.memLower)
        info.put(UInt32(upper / 1024), at: Info.memUpper)
        info.put(cmdlineAddress, at: Info.cmdline)
        info.put(UInt32(modules.count), at: Info.modsCount)
        info.put(UInt32(BootLayout.bootInfo) + UInt32(Info.modulesOffset), at: Info.modsAddress)
        info.put(UInt32(e820.entries.count * Info.mmapEntrySize), at: Info.mmapLength)
        info.put(UInt32(BootLayout.memoryMapTable), at: Info.mmapAddress)
        info.put(nameAddress, at: Info.bootloaderName)
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
            try memory.load(info.bytes, at: BootLayout.bootInfo)
            try memory.load(mmap.bytes, at: BootLayout.memoryMapTable)
            try memory.load(strings.bytes, at: strings.base)
        } catch {
            throw file.error(error.description)
        }
        var state = EntryState(mode: .protected, rip: entry)
        state.rax = UInt64(Self.bootloaderMagic)
        state.rbx = BootLayout.bootInfo
        return BootEntry(state: state)
    }
}
