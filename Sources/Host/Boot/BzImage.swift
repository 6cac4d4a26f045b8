/// A Linux kernel in bzImage format, booted the way boot.rst's 64-bit boot protocol describes (or
/// its 32-bit protocol, for kernels without XLF_KERNEL_64): no real-mode setup code runs; the
/// loader builds the zero page itself and jumps into the protected-mode kernel.
public struct BzImage: Sendable, Equatable {
    public var path: String
    public var cmdline: String
    public var initrd: String?

    public init(path: String, cmdline: String = "", initrd: String? = nil) {
        self.path = path
        self.cmdline = cmdline
        self.initrd = initrd
    }

    static let defaultLoadAddress: UInt64 = 0x10_0000
    /// The 64-bit entry (startup_64) sits 0x200 bytes into the protected-mode kernel.
    static let entry64Offset: UInt64 = 0x200
    /// e820_table in struct boot_params holds 128 entries (E820_MAX_ENTRIES_ZEROPAGE).
    static let maxE820Entries = 128
    /// struct boot_params is one page.
    static let zeroPageSize = 0x1000

    /// struct boot_params offsets (Documentation/arch/x86/zero-page.rst).
    enum ZeroPage {
        static let acpiRSDPAddress = 0x070
        static let e820Entries = 0x1E8
        static let typeOfLoader = 0x210
        static let code32Start = 0x214
        static let ramdiskImage = 0x218
        static let ramdiskSize = 0x21C
        static let heapEndPointer = 0x224
        static let extLoaderVersion = 0x226
        static let extLoaderType = 0x227
        static let cmdLinePointer = 0x228
        static let hardwareSubarch = 0x23C
        static let hardwareSubarchData = 0x240
        static let setupData = 0x250
        static let e820Table = 0x2D0
        static let e820EntrySize = 20
        /// "Undefined" loader id: Veneer has none assigned.
        static let loaderID: UInt8 = 0xFF
    }

    public func load(into memory: GuestMemory, e820: E820Map, rsdp: UInt64? = nil) throws(BootError) -> BootEntry {
        let file = try BootFile.read(path, role: "boot image", key: "boot.kernel", limit: memory.map.ramBytes)
        let header = try LinuxSetupHeader(file)
        let kernelSize = file.size - header.kernelOffset
        let footprint = max(kernelSize, UInt64(header.initSize ?? 0))
        let mode: CPUMode = header.supports64BitEntry ? .long : .protected
        if mode == .long, kernelSize <= Self.entry64Offset {
            throw file.error("the 64-bit entry at +0x200 lies past the end of the protected-mode kernel (\(kernelSize) bytes)")
        }
        let loadAddress = try chooseLoadAddress(header, footprint: footprint, e820: e820, file: file)

        let commandLine = Array(cmdline.utf8)
        guard !commandLine.contains(0) else { throw file.error("the command line contains a NUL byte") }
        guard commandLine.count <= header.cmdlineSize else {
            throw file.error("the command line is \(commandLine.count) bytes; this kernel accepts at most \(header.cmdlineSize) (cmdline_size)")
        }
        guard e820.entries.count <= Self.maxE820Entries else {
            throw file.error("the memory map has \(e820.entries.count) entries, more than the \(Self.maxE820Entries) the zero page holds")
        }

        // The kernel's whole footprint first, then the initrd high, then the zero page, command
        // line and (for the 64-bit entry) page tables in what is left.
        var placement = BootPlacement(e820: e820)
        if let reason = placement.claim(loadAddress..<loadAddress + footprint, name: "kernel (init_size)") {
            throw file.error("the kernel at \(describe(loadAddress..<loadAddress + footprint)) \(reason)")
        }
        var ramdisk: (address: UInt64, bytes: [UInt8])?
        if let initrd {
            let rd = try BootFile.read(initrd, role: "initrd", key: "boot.initrd", limit: memory.map.ramBytes)
            guard rd.size > 0 else { throw rd.error("the initrd is empty") }
            let limit = min(UInt64(header.initrdAddressMax) + 1, MemoryMap.fourGiB)
            do {
                ramdisk = (try placement.placeHigh("initrd", size: rd.size, below: limit), rd.bytes)
            } catch {
                throw rd.error("the initrd does not fit below initrd_addr_max \(hex(header.initrdAddressMax)): \(error)")
            }
        }
        let zeroPageAddress: UInt64, cmdlineAddress: UInt64, pageTables: UInt64?
        do {
            zeroPageAddress = try placement.placeBootData("zero page", size: Self.zeroPageSize, alignment: MemoryMap.pageSize)
            cmdlineAddress = try placement.placeBootData("command line", size: commandLine.count + 1, alignment: 16)
            pageTables = mode == .long
                ? try placement.placeBootData("boot page tables", size: CPUMode.pageTablesSize, alignment: MemoryMap.pageSize) : nil
        } catch {
            throw file.error(error.description)
        }

        var zeroPage = LittleEndianBuffer(count: Self.zeroPageSize)
        zeroPage.put(bytes: file.bytes[Int(LinuxSetupHeader.start)..<Int(header.end)], at: Int(LinuxSetupHeader.start))
        // Every field boot.rst marks "write" belongs to the loader: set each one, never pass on
        // what the file had there (a stale setup_data or ramdisk pointer would be followed).
        zeroPage.put(ZeroPage.loaderID, at: ZeroPage.typeOfLoader)
        zeroPage.put(UInt32(loadAddress), at: ZeroPage.code32Start)
        zeroPage.put(UInt32(ramdisk?.address ?? 0), at: ZeroPage.ramdiskImage)
        zeroPage.put(UInt32(ramdisk?.bytes.count ?? 0), at: ZeroPage.ramdiskSize)
        zeroPage.put(UInt16(0), at: ZeroPage.heapEndPointer)
        zeroPage.put(UInt8(0), at: ZeroPage.extLoaderVersion)
        zeroPage.put(UInt8(0), at: ZeroPage.extLoaderType)
        zeroPage.put(UInt32(cmdlineAddress), at: ZeroPage.cmdLinePointer)
        zeroPage.put(UInt32(0), at: ZeroPage.hardwareSubarch)       // a plain PC
        zeroPage.put(UInt64(0), at: ZeroPage.hardwareSubarchData)
        zeroPage.put(UInt64(0), at: ZeroPage.setupData)
        zeroPage.put(rsdp ?? 0, at: ZeroPage.acpiRSDPAddress)
        zeroPage.put(UInt8(e820.entries.count), at: ZeroPage.e820Entries)
        for (i, e) in e820.entries.enumerated() {
            let at = ZeroPage.e820Table + i * ZeroPage.e820EntrySize
            zeroPage.put(e.start, at: at)
            zeroPage.put(e.size, at: at + 8)
            zeroPage.put(e.kind.rawValue, at: at + 16)
        }

        do {
            try mode.writeTables(into: memory, selectors: .linux, pageTables: pageTables ?? CPUMode.pml4Address)
            try memory.load(Array(file.bytes[Int(header.kernelOffset)...]), at: loadAddress)
            try memory.load(zeroPage.bytes, at: zeroPageAddress)
            try memory.load(commandLine + [0], at: cmdlineAddress)
            if let ramdisk { try memory.load(ramdisk.bytes, at: ramdisk.address) }
        } catch {
            throw file.error(error.description)
        }

        // Both protocols: __BOOT_CS/__BOOT_DS, interrupts off, (E/R)SI = boot_params; the 32-bit
        // one also wants EBP, EDI and EBX zero, which the fresh state has.
        var state = EntryState(mode: mode, selectors: .linux,
                               rip: mode == .long ? loadAddress + Self.entry64Offset : loadAddress)
        state.rsi = zeroPageAddress
        if let pageTables { state.pageTables = pageTables }
        return BootEntry(state: state)
    }

    /// 0x100000 for a fixed kernel; for a relocatable one pref_address when it is aligned and fits,
    /// else the first kernel_alignment boundary at or above 1 MiB. The kernel's whole footprint
    /// (init_size: decompression and bss included) must be usable RAM below 4 GiB.
    func chooseLoadAddress(_ header: LinuxSetupHeader, footprint: UInt64, e820: E820Map, file: BootFile) throws(BootError) -> UInt64 {
        func fits(_ address: UInt64) -> Bool {
            address >= Self.defaultLoadAddress && address <= MemoryMap.fourGiB && footprint <= MemoryMap.fourGiB - address
                && e820.isUsable(address..<address + footprint)
        }
        guard header.relocatable else {
            guard fits(Self.defaultLoadAddress) else {
                throw file.error("the kernel needs \(hex(footprint)) bytes from 0x100000 (init_size), but usable RAM there ends at \(hex(e820.highMemoryEnd))")
            }
            return Self.defaultLoadAddress
        }
        let alignment = UInt64(header.kernelAlignment)
        var candidates: [UInt64] = []
        if let preferred = header.preferredAddress, preferred != 0, preferred % alignment == 0 { candidates.append(preferred) }
        candidates.append((Self.defaultLoadAddress + alignment - 1) & ~(alignment - 1))
        for address in candidates where fits(address) { return address }
        throw file.error("the kernel needs \(hex(footprint)) bytes (init_size) at a \(hex(alignment))-aligned address at or above 1 MiB, "
            + "but usable RAM there ends at \(hex(e820.highMemoryEnd))")
    }
}
