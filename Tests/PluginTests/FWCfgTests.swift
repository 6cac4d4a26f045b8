import Testing
import VeneerHarness
import VeneerHost

/// The fw-cfg plugin through the harness, as a guest (or firmware) drives it: the port interface,
/// the DMA interface with good and hostile access structures, the file directory and the items
/// built from the machine's facts.
@Suite struct FWCfgTests {
    static let selector: UInt16 = 0x510, data: UInt16 = 0x511, dmaHigh: UInt16 = 0x514, dmaLow: UInt16 = 0x518
    static let ram: UInt64 = 16 << 20

    static func facts(kernel: [UInt8] = [], initrd: [UInt8] = [], cmdline: String = "", vcpus: UInt32 = 3) throws -> MachineFacts {
        let map = E820Map(memoryMap: try MemoryMap.pc(ramBytes: ram))
        return MachineFacts(vcpuCount: vcpus, ramBytes: ram, memoryMap: map.entries, kernel: .bytes(kernel), initrd: .bytes(initrd),
                            cmdline: cmdline, acpi: try ACPILinkedTables(vcpuCount: Int(vcpus), devices: []))
    }

    static func device(facts: MachineFacts?, parameters: [String: ParameterValidation.Input] = [:]) throws -> PluginHarness {
        let h = try PluginHarness(plugin: "fw-cfg", parameters: parameters, ramBytes: ram)
        h.host.machineFacts = facts
        return h
    }

    static func select(_ h: PluginHarness, _ key: UInt16) { h.write(port: selector, UInt64(key), size: 2) }

    static func read(_ h: PluginHarness, _ key: UInt16, count: Int) -> [UInt8] {
        select(h, key)
        return (0..<count).map { _ in UInt8(h.read(port: data)) }
    }

    static func be<C: Collection<UInt8>>(_ bytes: C) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }
    static func le<C: Collection<UInt8>>(_ bytes: C) -> UInt64 { bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) } }

    struct Entry: Equatable {
        var name: String
        var size: Int
        var selector: UInt16
    }

    static func directory(_ h: PluginHarness) -> [Entry] {
        let count = Int(be(read(h, 0x19, count: 4)))
        return (0..<count).map { _ in
            let e = (0..<64).map { _ in UInt8(h.read(port: data)) }
            let name = String(decoding: e[8...].prefix { $0 != 0 }, as: UTF8.self)
            return Entry(name: name, size: Int(be(e[0..<4])), selector: UInt16(be(e[4..<6])))
        }
    }

    /// Puts an access structure at `at` and hands its address over, high half then low half,
    /// each big-endian as the guest writes it; returns the control word the device wrote back.
    @discardableResult
    static func dma(_ h: PluginHarness, control: UInt32, length: UInt32, address: UInt64, at: UInt64 = 0x1000) throws -> UInt32 {
        var access: [UInt8] = []
        for (value, count) in [(UInt64(control), 4), (UInt64(length), 4), (address, 8)] {
            access += (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64(count - 1 - $0))) }
        }
        if h.host.memory.map.region(containing: at, length: 16)?.kind == .ram { try h.host.memory.load(access, at: at) }
        h.write(port: dmaHigh, UInt64(UInt32(truncatingIfNeeded: at >> 32).byteSwapped), size: 4)
        h.write(port: dmaLow, UInt64(UInt32(truncatingIfNeeded: at).byteSwapped), size: 4)
        guard h.host.memory.map.region(containing: at, length: 16)?.kind == .ram else { return 0xFFFF_FFFF }
        return UInt32(be(try h.host.memory.bytes(at, count: 4)))
    }

    @Test func signatureAndIDBeforeTheMachineIsBuilt() throws {
        let h = try Self.device(facts: nil)
        #expect(Self.read(h, 0x0000, count: 4) == Array("QEMU".utf8))
        #expect(Self.le(Self.read(h, 0x0001, count: 4)) == 3, "port interface and DMA")
        #expect(Self.directory(h) == [])
        let noDMA = try Self.device(facts: nil, parameters: ["dma": .bool(false)])
        #expect(Self.le(Self.read(noDMA, 0x0001, count: 4)) == 1)
        #expect(noDMA.read(port: Self.dmaHigh, size: 4) == 0xFFFF_FFFF, "no DMA port without DMA")
    }

    @Test func machineItemsOverThePorts() throws {
        let h = try Self.device(facts: try Self.facts(vcpus: 3))
        #expect(Self.le(Self.read(h, 0x0005, count: 2)) == 3)
        #expect(Self.le(Self.read(h, 0x000F, count: 2)) == 3)
        #expect(Self.le(Self.read(h, 0x0003, count: 8)) == Self.ram)
        // The selector restarts the offset; past the end the data port reads zeros.
        #expect(Self.read(h, 0x0000, count: 6) == Array("QEMU".utf8) + [0, 0])
        // The write flag (bit 14) selects the same item.
        #expect(Self.read(h, 0x4000, count: 4) == Array("QEMU".utf8))
        // Data-port writes are ignored: every item is read-only.
        Self.select(h, 0x0005)
        h.write(port: Self.data, 0x77)
        #expect(Self.le(Self.read(h, 0x0005, count: 2)) == 3)
    }

    @Test(arguments: [0x0006, 0x001A, 0x001F, 0x0026, 0x3FFF, 0x7FFF, 0x8000, 0xBFFF, 0xFFFF] as [UInt16])
    func selectorsOutOfRangeReadZeros(key: UInt16) throws {
        let h = try Self.device(facts: try Self.facts())
        #expect(Self.read(h, key, count: 16) == [UInt8](repeating: 0, count: 16))
        #expect(try Self.dma(h, control: UInt32(key) << 16 | 0x08 | 0x02, length: 32, address: 0x2000) == 0)
        #expect(try h.host.memory.bytes(0x2000, count: 32) == [UInt8](repeating: 0, count: 32))
    }

    @Test func directoryListsTheFilesSortedWithTheirSelectors() throws {
        let h = try Self.device(facts: try Self.facts(), parameters: ["bootorder": .string("/pci@i0cf8/ide@1,1/drive@0/disk@0\nHALT")])
        let files = Self.directory(h)
        #expect(files.map(\.name) == ["bootorder", "etc/acpi/rsdp", "etc/acpi/tables", "etc/e820", "etc/table-loader"])
        #expect(files.map(\.selector) == [0x20, 0x21, 0x22, 0x23, 0x24])
        let bootorder = files[0]
        #expect(Self.read(h, bootorder.selector, count: bootorder.size) == Array("/pci@i0cf8/ide@1,1/drive@0/disk@0\nHALT".utf8) + [0])
        // etc/e820: 20-byte little-endian entries, the map the guest is told about.
        let e820 = files[3]
        let map = E820Map(memoryMap: try MemoryMap.pc(ramBytes: Self.ram))
        #expect(e820.size == map.entries.count * 20)
        let bytes = Self.read(h, e820.selector, count: e820.size)
        for (i, entry) in map.entries.enumerated() {
            let e = bytes[i * 20..<(i + 1) * 20]
            #expect(Self.le(e.prefix(8)) == entry.start && Self.le(e.dropFirst(8).prefix(8)) == entry.size)
            #expect(Self.le(e.suffix(4)) == UInt64(entry.kind.rawValue))
        }
        let rsdp = files[1]
        #expect(Self.read(h, rsdp.selector, count: 8) == Array("RSD PTR ".utf8))
        #expect(files[4].size % 128 == 0 && files[4].size > 0)
    }

    @Test func dmaSelectsReadsAndSkips() throws {
        let h = try Self.device(facts: try Self.facts(cmdline: "console=ttyS0"))
        #expect(h.read(port: Self.dmaHigh, size: 4) == 0x554D_4551, "\"QEMU\" in memory order")
        #expect(h.read(port: Self.dmaLow, size: 4) == 0x4746_4320, "\" CFG\" in memory order")
        let files = Self.directory(h)
        let e820 = try #require(files.first { $0.name == "etc/e820" })
        #expect(try Self.dma(h, control: UInt32(e820.selector) << 16 | 0x08 | 0x02, length: UInt32(e820.size), address: 0x3000) == 0)
        let viaDMA = try h.host.memory.bytes(0x3000, count: e820.size)
        #expect(viaDMA == Self.read(h, e820.selector, count: e820.size))
        // Skip 4 bytes, then read the rest of the signature without selecting again.
        Self.select(h, 0x0000)
        #expect(try Self.dma(h, control: 0x04, length: 2, address: 0) == 0)
        #expect(try Self.dma(h, control: 0x02, length: 4, address: 0x4000) == 0)
        #expect(try h.host.memory.bytes(0x4000, count: 4) == Array("MU".utf8) + [0, 0])
        // The command line with its NUL, after a DMA select.
        #expect(try Self.dma(h, control: 0x0015 << 16 | 0x08 | 0x02, length: 14, address: 0x5000) == 0)
        #expect(try h.host.memory.bytes(0x5000, count: 14) == Array("console=ttyS0".utf8) + [0])
        // Neither read, write nor skip: nothing moves, no error.
        #expect(try Self.dma(h, control: 0, length: 100, address: 0x6000) == 0)
    }

    @Test func hostileDMAIsRefusedWithTheErrorBit() throws {
        let h = try Self.device(facts: try Self.facts())
        // Data outside RAM, in the MMIO hole, wrapping around 2^64, and running off the end of RAM.
        for address in [0xFEC0_0000, 0xFFFF_FFFF_FFFF_FFF0, Self.ram - 8, 1 << 40] as [UInt64] {
            #expect(try Self.dma(h, control: 0x0000 << 16 | 0x08 | 0x02, length: 64, address: address) == 0x01, "\(address)")
        }
        // A 4 GiB read past the end of a small item: bounded by RAM, then refused.
        #expect(try Self.dma(h, control: 0x0001 << 16 | 0x08 | 0x02, length: 0xFFFF_FFFF, address: 0x10_0000) == 0x01)
        #expect(try h.host.memory.bytes(0x10_0000, count: 4) == [3, 0, 0, 0])
        // Writes: nothing is writable.
        #expect(try Self.dma(h, control: 0x0023 << 16 | 0x08 | 0x10, length: 4, address: 0x7000) == 0x01)
        // The access structure itself outside RAM, or straddling its end: ignored, nothing breaks.
        try Self.dma(h, control: 0x0A, length: 4, address: 0x8000, at: 0xFEC0_0000)
        try Self.dma(h, control: 0x0A, length: 4, address: 0x8000, at: Self.ram - 8)
        try Self.dma(h, control: 0x0A, length: 4, address: 0x8000, at: 0xFFFF_FFFF_FFFF_FFF8)
        // Still answering afterwards.
        #expect(Self.read(h, 0x0000, count: 4) == Array("QEMU".utf8))
    }

    @Test func linuxBootItemsSplitABzImage() throws {
        var kernel = [UInt8](repeating: 0x11, count: 0x2000)
        kernel[0x1F1] = 3                                      // 3 setup sectors + the boot sector
        kernel.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        let initrd = [UInt8](repeating: 0x22, count: 5000)
        let h = try Self.device(facts: try Self.facts(kernel: kernel, initrd: initrd, cmdline: "root=/dev/vda"))
        #expect(Self.le(Self.read(h, 0x0017, count: 4)) == 0x800)
        #expect(Self.read(h, 0x0018, count: 0x800) == Array(kernel[0..<0x800]))
        #expect(Self.le(Self.read(h, 0x0008, count: 4)) == 0x1800)
        #expect(Self.read(h, 0x0011, count: 0x1800) == Array(kernel[0x800...]))
        #expect(Self.le(Self.read(h, 0x0007, count: 4)) == 0x10_0000)
        #expect(Self.le(Self.read(h, 0x000B, count: 4)) == 5000)
        #expect(Self.read(h, 0x0012, count: 5000) == initrd)
        let initrdAddress = Self.le(Self.read(h, 0x000A, count: 4))
        #expect(initrdAddress % 4096 == 0 && initrdAddress + 5000 <= Self.ram)
        #expect(Self.le(Self.read(h, 0x0014, count: 4)) == 14)
        #expect(Self.read(h, 0x0015, count: 14) == Array("root=/dev/vda".utf8) + [0])
    }

    @Test func stateRoundTripsAndBadStateIsRefused() throws {
        let h = try Self.device(facts: try Self.facts())
        Self.select(h, 0x0000)
        _ = h.read(port: Self.data)
        let state = try h.save()
        try h.reset()
        try h.load(state)
        #expect(h.read(port: Self.data) == UInt64(UInt8(ascii: "E")))
        // An offset past the item's end.
        var bad = state
        bad[2] = 0x40
        #expect(throws: (any Error).self) { try h.load(bad) }
        #expect(throws: (any Error).self) { try h.load(Array(state.prefix(5))) }
    }
}
