import Testing
@testable import VeneerHost

@Suite struct BzImageTests {
    let zeroPage: UInt64 = 0x1000      // the first free page past page 0

    func load(_ fixture: BzImageFixture, cmdline: String = "console=ttyS0", initrd: [UInt8]? = nil,
              ram: UInt64 = 64 << 20, in scratch: Scratch) throws -> (GuestMemory, BootEntry, kernel: String) {
        let kernel = try scratch.write(fixture.bytes, "bzImage")
        let rd = try initrd.map { try scratch.write($0, "initrd") }
        let memory = try BootFixtures.memory(ram)
        let entry = try BootImage.bzImage(BzImage(path: kernel, cmdline: cmdline, initrd: rd)).load(into: memory)
        return (memory, entry, kernel)
    }

    @Test func relocatableKernelAtPreferredAddressEnteredInLongMode() throws {
        let scratch = try Scratch()
        let fixture = BzImageFixture()
        let initrd = BootFixtures.pattern(5000, seed: 7)
        let (memory, entry, _) = try load(fixture, cmdline: "console=ttyS0 answer=42", initrd: initrd, in: scratch)

        #expect(try memory.bytes(0x100_0000, count: fixture.payload.count) == fixture.payload)
        var expected = EntryState(mode: .long, selectors: .linux, rip: 0x100_0200)
        expected.rsi = zeroPage
        expected.pageTables = 0x3000                           // after the zero page and command line
        #expect(entry == BootEntry(state: expected))
        #expect(entry.state(forVCPU: 1, count: 2) == nil)

        // The setup header, copied around the fields the loader fills in (0x210..0x22B).
        #expect(try memory.bytes(zeroPage + 0x1F1, count: 0x210 - 0x1F1) == Array(fixture.bytes[0x1F1..<0x210]))
        #expect(try memory.bytes(zeroPage + 0x22C, count: 0x26C - 0x22C) == Array(fixture.bytes[0x22C..<0x26C]))
        #expect(try memory.readValue(zeroPage + 0x26C, as: UInt32.self) == 0)
        #expect(try memory.readValue(zeroPage + 0x1FE, as: UInt16.self) == 0xAA55)
        #expect(try memory.readValue(zeroPage + 0x210, as: UInt8.self) == 0xFF)
        #expect(try memory.readValue(zeroPage + 0x214, as: UInt32.self) == 0x100_0000)
        let cmdline: UInt32 = try memory.readValue(zeroPage + 0x228)
        #expect(cmdline == 0x2000)    // the page after the zero page
        #expect(try BootFixtures.cString(memory, at: UInt64(cmdline)) == "console=ttyS0 answer=42")

        // The initrd: at the top of RAM, page aligned, intact.
        let image: UInt32 = try memory.readValue(zeroPage + 0x218)
        #expect(try memory.readValue(zeroPage + 0x21C, as: UInt32.self) == 5000)
        #expect(image == (64 << 20) - 0x2000)
        #expect(try memory.bytes(UInt64(image), count: initrd.count) == initrd)

        // e820: 6 entries of { u64 addr, u64 size, u32 type } at 0x2D0.
        let e820 = E820Map(memoryMap: memory.map)
        #expect(try memory.readValue(zeroPage + 0x1E8, as: UInt8.self) == 6)
        for (i, e) in e820.entries.enumerated() {
            let at = zeroPage + 0x2D0 + UInt64(i * 20)
            #expect(try memory.readValue(at, as: UInt64.self) == e.start)
            #expect(try memory.readValue(at + 8, as: UInt64.self) == e.size)
            #expect(try memory.readValue(at + 16, as: UInt32.self) == e.kind.rawValue)
        }

        // GDT: __BOOT_CS 0x10 is 64-bit code, __BOOT_DS 0x18 flat data; page tables map 4 GiB.
        #expect(try memory.readValue(0x510, as: UInt64.self) == CPUMode.code64)
        #expect(try memory.readValue(0x518, as: UInt64.self) == CPUMode.data32)
        #expect(try memory.readValue(0x3000, as: UInt64.self) == 0x4003)
        #expect(try memory.readValue(0x8000 + 511 * 8, as: UInt64.self) == 0xFFE0_0083)
    }

    @Test func fixedKernelLoadsAt1MiBAndWithout64BitEntryUsesThe32BitProtocol() throws {
        let scratch = try Scratch()
        var fixture = BzImageFixture()
        fixture.relocatable = false
        fixture.xloadflags = 0
        let (memory, entry, _) = try load(fixture, in: scratch)
        #expect(try memory.bytes(0x10_0000, count: 64) == Array(fixture.payload[0..<64]))
        var expected = EntryState(mode: .protected, selectors: .linux, rip: 0x10_0000)
        expected.rsi = zeroPage
        #expect(entry.state == expected)
        #expect(try memory.readValue(0x510, as: UInt64.self) == CPUMode.code32)
        #expect(try memory.readValue(zeroPage + 0x218, as: UInt32.self) == 0)   // no initrd
    }

    /// The loader owns the "write" fields: whatever the file holds there must not reach the kernel.
    @Test func loaderFieldsAreNeverCopiedFromTheFile() throws {
        let scratch = try Scratch()
        var bytes = BzImageFixture().bytes
        for offset in [0x218, 0x21C, 0x224, 0x228, 0x23C, 0x240, 0x250, 0x254] {
            bytes.replaceSubrange(offset..<offset + 4, with: [0xDE, 0xAD, 0xBE, 0xEF])
        }
        let kernel = try scratch.write(bytes, "bzImage")
        let memory = try BootFixtures.memory()
        _ = try BzImage(path: kernel, cmdline: "x").load(into: memory, e820: E820Map(memoryMap: memory.map))
        #expect(try memory.readValue(zeroPage + 0x218, as: UInt64.self) == 0)          // ramdisk_image, ramdisk_size
        #expect(try memory.readValue(zeroPage + 0x224, as: UInt32.self) == 0)          // heap_end_ptr, ext_loader_*
        #expect(try memory.readValue(zeroPage + 0x228, as: UInt32.self) == 0x2000)    // the page after the zero page
        #expect(try memory.readValue(zeroPage + 0x23C, as: UInt32.self) == 0)          // hardware_subarch
        #expect(try memory.readValue(zeroPage + 0x240, as: UInt64.self) == 0)          // hardware_subarch_data
        #expect(try memory.readValue(zeroPage + 0x250, as: UInt64.self) == 0)          // setup_data
    }

    @Test func preferredAddressThatDoesNotFitFallsBackToTheFirstAlignedAddress() throws {
        let scratch = try Scratch()
        var fixture = BzImageFixture()
        fixture.preferredAddress = 0x200_0000                  // 32 MiB, and the VM has 16
        let (memory, entry, _) = try load(fixture, ram: 16 << 20, in: scratch)
        #expect(entry.state.rip == 0x20_0200)
        #expect(try memory.readValue(zeroPage + 0x214, as: UInt32.self) == 0x20_0000)
    }

    @Test func initrdAvoidsTheKernelAndRespectsInitrdAddrMax() throws {
        let scratch = try Scratch()
        var fixture = BzImageFixture()
        fixture.relocatable = false
        fixture.initrdAddressMax = 0x5F_FFFF                   // below 6 MiB
        fixture.initSize = 0x40_0000                            // kernel owns 1 MiB..5 MiB
        let (memory, _, _) = try load(fixture, initrd: BootFixtures.pattern(0x1800), in: scratch)
        #expect(try memory.readValue(zeroPage + 0x218, as: UInt32.self) == 0x60_0000 - 0x2000)
    }

    @Test func truncatedFile() throws {
        let scratch = try Scratch()
        let kernel = try scratch.write(Array(BzImageFixture().bytes[0..<0x100]), "bzImage")
        expectBootError(kernel, "truncated: boot_flag") {
            _ = try BzImage(path: kernel).load(into: try BootFixtures.memory(), e820: E820Map(memoryMap: try MemoryMap.pc(ramBytes: 64 << 20)))
        }
    }

    func expectRefused(_ fixture: BzImageFixture, _ fragment: String, cmdline: String = "", initrd: String? = nil,
                       initrdRole: Bool = false, ram: UInt64 = 64 << 20,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let scratch = try Scratch()
        let kernel = try scratch.write(fixture.bytes, "bzImage")
        let memory = try BootFixtures.memory(ram)
        let image = BzImage(path: kernel, cmdline: cmdline, initrd: initrd)
        expectBootError(initrdRole ? initrd ?? "" : kernel, fragment, role: initrdRole ? "initrd" : "boot image",
                        sourceLocation: sourceLocation) {
            _ = try image.load(into: memory, e820: E820Map(memoryMap: memory.map))
        }
    }

    @Test func wrongMagicNumbers() throws {
        var f = BzImageFixture()
        f.bootFlag = 0x1234
        try expectRefused(f, "boot_flag at 0x1fe is 0x1234, not 0xaa55")
        f = BzImageFixture()
        f.magic = 0x4142_4344
        try expectRefused(f, "no \"HdrS\" magic at 0x202")
    }

    @Test func protocolTooOld() throws {
        var f = BzImageFixture()
        f.version = 0x0205
        try expectRefused(f, "boot protocol 2.05 is older than 2.06")
    }

    @Test func setupSectorsPastTheEndOfTheFile() throws {
        var f = BzImageFixture()
        f.setupSectors = 1
        f.payload = []
        f.syssize = 0
        try expectRefused(f, "truncated: setup_sects 1 puts the protected-mode kernel at 0x400, at or past the end of the file")
        // setup_sects 0 means 4: the header claims 2.5 KiB of setup the 1 KiB file does not have.
        let scratch = try Scratch()
        var bytes = BzImageFixture().bytes
        bytes[0x1F1] = 0
        let kernel = try scratch.write(Array(bytes[0..<0x600]), "bzImage")
        let memory = try BootFixtures.memory()
        expectBootError(kernel, "setup_sects 4 puts the protected-mode kernel at 0xa00") {
            _ = try BzImage(path: kernel).load(into: memory, e820: E820Map(memoryMap: memory.map))
        }
    }

    @Test func syssizeLongerThanTheFile() throws {
        var f = BzImageFixture()
        f.syssize = 0x1000
        try expectRefused(f, "truncated: syssize says the protected-mode kernel has 65536 bytes, the file holds 4096")
    }

    @Test func headerShorterThanItsProtocolVersion() throws {
        var f = BzImageFixture()
        f.headerLength = 0x30
        try expectRefused(f, "the setup header ends at 0x232")
    }

    @Test func loadedHighRequired() throws {
        var f = BzImageFixture()
        f.loadflags = 0
        try expectRefused(f, "lacks LOADED_HIGH")
    }

    @Test func badKernelAlignment() throws {
        var f = BzImageFixture()
        f.kernelAlignment = 0x30_0000
        try expectRefused(f, "kernel_alignment 0x300000: not a power of two")
    }

    @Test func kernelTooBigForRAM() throws {
        var f = BzImageFixture()
        f.initSize = 0x800_0000
        try expectRefused(f, "the kernel needs 0x8000000 bytes (init_size)")
    }

    @Test func sixtyFourBitEntryPastTheKernel() throws {
        var f = BzImageFixture()
        f.payload = BootFixtures.pattern(0x100)
        try expectRefused(f, "the 64-bit entry at +0x200 lies past the end of the protected-mode kernel (256 bytes)")
    }

    @Test func commandLineTooLong() throws {
        var f = BzImageFixture()
        f.cmdlineSize = 16
        try expectRefused(f, "the command line is 17 bytes; this kernel accepts at most 16 (cmdline_size)",
                          cmdline: "console=ttyS0 abc")
        try expectRefused(BzImageFixture(), "the command line contains a NUL byte", cmdline: "a\u{0}b")
    }

    @Test func initrdLargerThanRAM() throws {
        let scratch = try Scratch()
        let big = try scratch.sparse(17 << 20, "initrd")
        try expectRefused(BzImageFixture(), "larger than guest RAM", initrd: big, initrdRole: true, ram: 16 << 20)
        // Fits RAM as a file, but not the usable RAM below 4 GiB (EBDA/BIOS area excluded).
        let almost = try scratch.sparse((16 << 20) - 0x1000, "initrd2")
        try expectRefused(BzImageFixture(), "no room for the initrd (16773120 bytes) in usable RAM below 0x80000000", initrd: almost,
                          initrdRole: true, ram: 16 << 20)
    }

    @Test func initrdAboveInitrdAddrMax() throws {
        let scratch = try Scratch()
        var f = BzImageFixture()
        f.relocatable = false
        f.initrdAddressMax = 0x1F_FFFF                         // 2 MiB, and the kernel owns 1..2 MiB
        let initrd = try scratch.write(BootFixtures.pattern(0x1000), "initrd")
        try expectRefused(f, "does not fit below initrd_addr_max 0x1fffff", initrd: initrd, initrdRole: true)
    }

    @Test func missingAndEmptyInitrd() throws {
        let scratch = try Scratch()
        try expectRefused(BzImageFixture(), "cannot open: No such file or directory", initrd: "\(scratch.path)/none", initrdRole: true)
        let empty = try scratch.write([], "empty")
        try expectRefused(BzImageFixture(), "the initrd is empty", initrd: empty, initrdRole: true)
    }
}
