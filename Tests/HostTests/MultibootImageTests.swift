import Testing
@testable import VeneerHost

@Suite struct MultibootImageTests {
    let info: UInt64 = 0x1000          // the first free page past page 0
    static let code = BootFixtures.pattern(0x200, seed: 5)

    /// An ELF32 kernel at 1 MiB whose first bytes are the multiboot header, entered just past it.
    static func elfKernel(header: MultibootHeaderFixture = MultibootHeaderFixture(), entry: UInt64 = 0x10_0010,
                          memorySize: UInt64 = 0x3000) -> ELFFixture {
        ELFFixture(is64: false, entry: entry, segments: [
            ELFFixture.Segment(address: 0x10_0000, data: header.bytes + code, memorySize: memorySize),
        ])
    }

    /// A flat a.out-kludge image: `prefix` bytes, the header, then code.
    static func aoutKernel(_ addresses: MultibootHeaderFixture.Addresses, prefix: Int = 0x40) -> [UInt8] {
        BootFixtures.pattern(prefix, seed: 2) + MultibootHeaderFixture(addresses: addresses).bytes + code
    }

    static let aout = MultibootHeaderFixture.Addresses(header: 0x10_0040, load: 0x10_0000, loadEnd: 0, bssEnd: 0x10_4000, entry: 0x10_0060)

    @Test func elfKernelWithModules() throws {
        let scratch = try Scratch()
        let kernel = try scratch.write(Self.elfKernel().bytes, "kernel.elf")
        let m1 = BootFixtures.pattern(100, seed: 11), m2 = BootFixtures.pattern(0x1001, seed: 12)
        let modules = [
            MultibootImage.Module(path: try scratch.write(m1, "m1"), cmdline: "first arg=1"),
            MultibootImage.Module(path: try scratch.write(m2, "m2")),
        ]
        let memory = try BootFixtures.memory()
        try memory.load([UInt8](repeating: 0xCC, count: 0x3000), at: 0x10_0000)
        let entry = try BootImage.multiboot(MultibootImage(path: kernel, cmdline: "kernel answer=42", modules: modules)).load(into: memory)

        var expected = EntryState(mode: .protected, rip: 0x10_0010)
        expected.rax = 0x2BAD_B002
        expected.rbx = info
        #expect(entry == BootEntry(state: expected))
        #expect(try memory.bytes(0x10_0000 + 12, count: Self.code.count) == Self.code)
        #expect(try memory.bytes(0x10_0000 + 12 + 0x200, count: 0x3000 - 0x20C) == [UInt8](repeating: 0, count: 0x3000 - 0x20C))

        func u32(_ offset: UInt64) throws -> UInt32 { try memory.readValue(info + offset) }
        #expect(try u32(0) == 0x24D)                               // mem, cmdline, mods, mmap, loader name
        #expect(try u32(4) == 639)
        #expect(try u32(8) == (63 << 20) / 1024)
        #expect(try BootFixtures.cString(memory, at: UInt64(try u32(16))) == "kernel answer=42")
        #expect(try BootFixtures.cString(memory, at: UInt64(try u32(64))) == "veneer")

        #expect(try u32(20) == 2)
        let mods = UInt64(try u32(24))
        for (i, (bytes, string)) in [(m1, "first arg=1"), (m2, "")].enumerated() {
            let at = mods + UInt64(i * 16)
            let start: UInt32 = try memory.readValue(at), end: UInt32 = try memory.readValue(at + 4)
            #expect(start % 4096 == 0)
            #expect(end - start == UInt32(bytes.count))
            #expect(try memory.bytes(UInt64(start), count: bytes.count) == bytes)
            #expect(try BootFixtures.cString(memory, at: UInt64(try memory.readValue(at + 8, as: UInt32.self))) == string)
            #expect(start >= 0x10_3000)                             // clear of the kernel
        }

        let e820 = E820Map(memoryMap: memory.map)
        #expect(try u32(44) == UInt32(e820.entries.count * 24))
        let mmap = UInt64(try u32(48))
        for (i, e) in e820.entries.enumerated() {
            let at = mmap + UInt64(i * 24)
            #expect(try memory.readValue(at, as: UInt32.self) == 20)
            #expect(try memory.readValue(at + 4, as: UInt64.self) == e.start)
            #expect(try memory.readValue(at + 12, as: UInt64.self) == e.size)
            #expect(try memory.readValue(at + 20, as: UInt32.self) == e.kind.rawValue)
        }
    }

    @Test func aoutKludgeLoadsTheFileAndZeroesTheBss() throws {
        let scratch = try Scratch()
        let bytes = Self.aoutKernel(Self.aout)
        let kernel = try scratch.write(bytes, "kernel.bin")
        let memory = try BootFixtures.memory()
        try memory.load([UInt8](repeating: 0xCC, count: 0x4000), at: 0x10_0000)
        let entry = try MultibootImage(path: kernel).load(into: memory, e820: E820Map(memoryMap: memory.map))
        #expect(entry.state.rip == 0x10_0060)
        #expect(try memory.bytes(0x10_0000, count: bytes.count) == bytes)
        let bss = 0x4000 - bytes.count
        #expect(try memory.bytes(0x10_0000 + UInt64(bytes.count), count: bss) == [UInt8](repeating: 0, count: bss))
        #expect(try memory.readValue(info + 20, as: UInt32.self) == 0)   // no modules
    }

    @Test func aoutKludgeWithALoadOffsetAndLoadEnd() throws {
        // The header sits 0x1000 into the file, 0x40 into what is loaded: the first 0xFC0 bytes stay behind.
        let a = MultibootHeaderFixture.Addresses(header: 0x20_0040, load: 0x20_0000, loadEnd: 0x20_0100, bssEnd: 0, entry: 0x20_0080)
        let bytes = Self.aoutKernel(a, prefix: 0x1000)
        let scratch = try Scratch()
        let kernel = try scratch.write(bytes, "kernel.bin")
        let memory = try BootFixtures.memory()
        _ = try MultibootImage(path: kernel).load(into: memory, e820: E820Map(memoryMap: memory.map))
        #expect(try memory.bytes(0x20_0000, count: 0x100) == Array(bytes[0xFC0..<0x10C0]))
        #expect(try memory.readValue(0x20_0100, as: UInt64.self) == 0)
    }

    @Test func optionalFlagBitsAreIgnored() throws {
        let scratch = try Scratch()
        let kernel = try scratch.write(Self.elfKernel(header: MultibootHeaderFixture(flags: 0x3 | 1 << 20)).bytes, "k")
        let memory = try BootFixtures.memory()
        #expect(try MultibootImage(path: kernel).load(into: memory, e820: E820Map(memoryMap: memory.map)).state.rip == 0x10_0010)
    }

    func expectRefused(_ bytes: [UInt8], _ fragment: String, modules: [MultibootImage.Module] = [], cmdline: String = "",
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let scratch = try Scratch()
        let kernel = try scratch.write(bytes, "kernel")
        let memory = try BootFixtures.memory()
        expectBootError(kernel, fragment, sourceLocation: sourceLocation) {
            _ = try MultibootImage(path: kernel, cmdline: cmdline, modules: modules).load(into: memory, e820: E820Map(memoryMap: memory.map))
        }
    }

    @Test func headerChecksumWrong() throws {
        try expectRefused(Self.elfKernel(header: MultibootHeaderFixture(checksum: 0x1234)).bytes,
                          "the multiboot header at offset 0x60 has a bad checksum")
    }

    @Test func headerMissingMisalignedOrTooFar() throws {
        try expectRefused(BootFixtures.pattern(0x3000), "no multiboot header (magic 0x1badb002 on a 4-byte boundary) in the first 8192 bytes")
        try expectRefused([0, 0] + MultibootHeaderFixture().bytes + Self.code, "no multiboot header")
        try expectRefused([UInt8](repeating: 0, count: 8192) + MultibootHeaderFixture().bytes, "no multiboot header")
    }

    @Test func requirementsWeCannotHonour() throws {
        try expectRefused(Self.elfKernel(header: MultibootHeaderFixture(flags: 0x7)).bytes,
                          "requires a video mode (flag bit 2)")
        try expectRefused(Self.elfKernel(header: MultibootHeaderFixture(flags: 0x23)).bytes,
                          "sets requirement flags 0x20 that Veneer does not know")
    }

    @Test func aoutAddressesInconsistent() throws {
        var a = Self.aout
        a.load = 0x10_0080
        try expectRefused(Self.aoutKernel(a), "load_addr 0x100080 is above header_addr 0x100040")
        a = Self.aout
        a.load = 0xF_0000
        try expectRefused(Self.aoutKernel(a), "puts the load start before the file's beginning")
        a = Self.aout
        a.loadEnd = 0x10_0000
        try expectRefused(Self.aoutKernel(a), "load_end_addr 0x100000 is not above load_addr 0x100000")
        a = Self.aout
        a.loadEnd = 0x11_0000
        try expectRefused(Self.aoutKernel(a), "truncated: a.out kludge loads 0x10000 bytes from offset 0x0")
        a = Self.aout
        a.bssEnd = 0x10_0100
        try expectRefused(Self.aoutKernel(a), "bss_end_addr 0x100100 is below the end of the loaded bytes 0x100260")
        a = Self.aout
        a.entry = 0x10_5000
        try expectRefused(Self.aoutKernel(a), "entry_addr 0x105000 is outside the loaded image 0x100000-0x103fff")
        a = Self.aout
        a.loadEnd = 0x10_0020
        try expectRefused(Self.aoutKernel(a), "header_addr 0x100040 is not inside the loaded range 0x100000-0x10001f")
        a = Self.aout
        a.header = 0xFFFF_F040
        a.load = 0xFFFF_F000
        a.bssEnd = 0
        a.entry = 0xFFFF_F060
        try expectRefused(Self.aoutKernel(a), "is not in usable guest RAM")
    }

    @Test func elfWithoutEntryOrLoadableSegment() throws {
        try expectRefused(Self.elfKernel(entry: 0).bytes, "the ELF file has no entry point (e_entry is 0)")
        try expectRefused(Self.elfKernel(entry: 0x50_0000).bytes, "the ELF entry 0x500000 is not inside any PT_LOAD segment")
        var noLoad = Self.elfKernel()
        noLoad.segments[0].type = 6                            // PT_PHDR: the header is still in the file
        try expectRefused(noLoad.bytes, "is not inside any PT_LOAD segment")
    }

    @Test func neitherELFNorAddressFields() throws {
        try expectRefused(MultibootHeaderFixture().bytes + Self.code, "the file is not ELF")
    }

    @Test func modulesThatCannotBeLoaded() throws {
        let scratch = try Scratch()
        let kernel = try scratch.write(Self.elfKernel().bytes, "kernel")
        let memory = try BootFixtures.memory(16 << 20)
        let missing = MultibootImage.Module(path: scratch.path + "/missing", cmdline: "x")
        expectBootError(missing.path, "cannot open: No such file or directory", role: "module 1") {
            _ = try MultibootImage(path: kernel, modules: [missing]).load(into: memory, e820: E820Map(memoryMap: memory.map))
        }
        let big = MultibootImage.Module(path: try scratch.sparse(15 << 20, "big"))
        let small = MultibootImage.Module(path: try scratch.write([1, 2, 3], "small"))
        expectBootError(big.path, "no room for the module 2 (15728640 bytes) in usable RAM below 0xffffffff", role: "module 2") {
            _ = try MultibootImage(path: kernel, modules: [small, big]).load(into: memory, e820: E820Map(memoryMap: memory.map))
        }
        try expectRefused(Self.elfKernel().bytes, "the command line contains a NUL byte", cmdline: "a\u{0}")
    }
}
