/// Everything the device serves, by selector: the fixed items and the named files with their
/// directory. Built from the machine's facts (ABI 1.3) as raw bytes, so every length and count in
/// them is checked here before use.
struct FWCfgItems {
    /// What the host told the plugin, undecoded: each fact's bytes as machine_fact returned them.
    struct Facts {
        var vcpuCount: [UInt8] = []
        var ramBytes: [UInt8] = []
        var memoryMap: [UInt8] = []
        var kernel: [UInt8] = []
        var initrd: [UInt8] = []
        var cmdline: [UInt8] = []
        var acpiTables: [UInt8] = []
        var acpiRSDP: [UInt8] = []
        var acpiLoader: [UInt8] = []
    }

    private(set) var items: [UInt16: [UInt8]] = [:]
    private(set) var files: [FWCfgFile] = []

    /// Where QEMU's x86 Linux loader puts the pieces, as hints for firmware that loads the kernel
    /// itself (it may choose otherwise): the protected-mode kernel, the real-mode setup and the
    /// command line.
    static let kernelLoadAddress: UInt32 = 0x10_0000
    static let setupLoadAddress: UInt32 = 0x1_0000
    static let cmdlineLoadAddress: UInt32 = 0x2_0000
    /// The highest initrd end Linux's older boot protocols accept (initrd_addr_max default).
    static let initrdLimit: UInt64 = 0x3800_0000
    static let memoryMapEntrySize = 24

    /// Just the signature and ID, until the machine's facts are known.
    init(dma: Bool) {
        items[FWCfgKey.signature] = FWCfgKey.signatureBytes
        items[FWCfgKey.id] = littleEndian(UInt64(FWCfgKey.idTraditional | (dma ? FWCfgKey.idDMA : 0)), count: 4)
        items[FWCfgKey.fileDirectory] = FWCfgFileDirectory.encode([])
    }

    init(dma: Bool, facts: Facts, bootOrder: String) {
        self.init(dma: dma)
        let vcpus = facts.vcpuCount.count == 4 ? Self.le(facts.vcpuCount) : 0
        let ram = facts.ramBytes.count == 8 ? Self.le(facts.ramBytes) : 0
        items[FWCfgKey.uuid] = [UInt8](repeating: 0, count: 16)
        items[FWCfgKey.ramSize] = littleEndian(ram, count: 8)
        items[FWCfgKey.nbCPUs] = littleEndian(vcpus, count: 2)
        items[FWCfgKey.maxCPUs] = littleEndian(vcpus, count: 2)

        // The memory map: 24-byte host entries (start, size, type) become 20-byte e820 entries.
        var e820: [UInt8] = []
        var ramBelow4G: UInt64 = 0
        let entries = facts.memoryMap.count / Self.memoryMapEntrySize
        for i in 0..<entries {
            let entry = Array(facts.memoryMap[i * Self.memoryMapEntrySize..<(i + 1) * Self.memoryMapEntrySize])
            let start = Self.le(entry[0..<8]), size = Self.le(entry[8..<16]), type = Self.le(entry[16..<20])
            e820 += entry[0..<20]
            if type == 1, start < 1 << 32 { ramBelow4G = max(ramBelow4G, min(start &+ size, 1 << 32)) }
        }

        // A bzImage splits into its real-mode setup and the protected-mode kernel, as QEMU's
        // loader hands them over; anything else is the kernel as a whole.
        var setup: [UInt8] = [], kernel = facts.kernel
        if facts.kernel.count >= 0x206, Array(facts.kernel[0x202..<0x206]) == Array("HdrS".utf8) {
            let sectors = facts.kernel[0x1F1] == 0 ? 4 : Int(facts.kernel[0x1F1])
            let setupSize = (sectors + 1) * 512
            if setupSize <= facts.kernel.count {
                setup = Array(facts.kernel[0..<setupSize])
                kernel = Array(facts.kernel[setupSize...])
            }
        }
        let hasKernel = !facts.kernel.isEmpty
        let cmdline = hasKernel || !facts.cmdline.isEmpty ? facts.cmdline + [0] : []
        items[FWCfgKey.kernelAddress] = littleEndian(UInt64(hasKernel ? Self.kernelLoadAddress : 0), count: 4)
        items[FWCfgKey.kernelSize] = littleEndian(UInt64(kernel.count), count: 4)
        items[FWCfgKey.kernelData] = kernel
        items[FWCfgKey.setupAddress] = littleEndian(UInt64(setup.isEmpty ? 0 : Self.setupLoadAddress), count: 4)
        items[FWCfgKey.setupSize] = littleEndian(UInt64(setup.count), count: 4)
        items[FWCfgKey.setupData] = setup
        let initrd = facts.initrd
        let initrdTop = min(ramBelow4G, Self.initrdLimit)
        let initrdAddress = initrd.isEmpty || UInt64(initrd.count) > initrdTop ? 0 : (initrdTop - UInt64(initrd.count)) & ~0xFFF
        items[FWCfgKey.initrdAddress] = littleEndian(initrdAddress, count: 4)
        items[FWCfgKey.initrdSize] = littleEndian(UInt64(initrd.count), count: 4)
        items[FWCfgKey.initrdData] = initrd
        items[FWCfgKey.cmdlineAddress] = littleEndian(UInt64(cmdline.isEmpty ? 0 : Self.cmdlineLoadAddress), count: 4)
        items[FWCfgKey.cmdlineSize] = littleEndian(UInt64(cmdline.count), count: 4)
        items[FWCfgKey.cmdlineData] = cmdline
        items[FWCfgKey.kernelCmdline] = littleEndian(UInt64(cmdline.isEmpty ? 0 : Self.cmdlineLoadAddress), count: 4)

        var named: [(String, [UInt8])] = [("etc/e820", e820)]
        if !bootOrder.isEmpty { named.append(("bootorder", Array(bootOrder.utf8) + [0])) }
        if !facts.acpiTables.isEmpty, !facts.acpiRSDP.isEmpty, !facts.acpiLoader.isEmpty {
            named += [("etc/acpi/tables", facts.acpiTables), ("etc/acpi/rsdp", facts.acpiRSDP), ("etc/table-loader", facts.acpiLoader)]
        }
        named.sort { $0.0 < $1.0 }
        files = named.enumerated().map { FWCfgFile(name: $1.0, selector: FWCfgKey.firstFile + UInt16($0), data: $1.1) }
        for f in files { items[f.selector] = f.data }
        items[FWCfgKey.fileDirectory] = FWCfgFileDirectory.encode(files)
    }

    /// The item a selector picks (the write flag does not change which), or nil when absent.
    func item(_ selector: UInt16) -> [UInt8]? { items[selector & ~FWCfgKey.writeFlag] }

    private static func le<C: Collection<UInt8>>(_ bytes: C) -> UInt64 {
        bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
}
