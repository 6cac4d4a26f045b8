import Testing
@testable import VeneerHost

@Suite struct PVHImageTests {
    let startInfo: UInt64 = 0x1000     // the first free page past page 0
    static let code = BootFixtures.pattern(0x300, seed: 3)

    /// A PVH kernel: one PT_LOAD at 1 MiB (0x300 file bytes, 0x2000 in memory) and a PT_NOTE
    /// with the entry note, 8-byte descriptor as Linux writes it.
    static func kernel(is64: Bool = true, entry: UInt64 = 0x10_0040, note: [UInt8]? = nil,
                       segments: [ELFFixture.Segment]? = nil) -> ELFFixture {
        let noteBytes = note ?? ELFFixture.xenNote(descriptor: ELFFixture.littleEndian(entry))
        let load = ELFFixture.Segment(address: 0x10_0000, data: code, memorySize: 0x2000)
        let noteSegment = ELFFixture.Segment(type: 4, address: 0, data: noteBytes, alignment: 4)
        return ELFFixture(is64: is64, entry: 0xFFFF_FFFF_8100_0000, segments: (segments ?? [load]) + [noteSegment])
    }

    func load(_ fixture: ELFFixture, cmdline: String = "console=hvc0", initrd: [UInt8]? = nil,
              memory: GuestMemory? = nil, in scratch: Scratch) throws -> (GuestMemory, BootEntry) {
        let path = try scratch.write(fixture.bytes, "vmlinux")
        let rd = try initrd.map { try scratch.write($0, "initrd") }
        let memory = try memory ?? BootFixtures.memory()
        return (memory, try BootImage.pvh(PVHImage(path: path, cmdline: cmdline, initrd: rd)).load(into: memory))
    }

    @Test func startInfoMemmapAndInitrd() throws {
        let scratch = try Scratch()
        let memory = try BootFixtures.memory()
        // Garbage where the bss goes: the loader must zero it, not trust fresh RAM.
        try memory.load([UInt8](repeating: 0xCC, count: 0x2000), at: 0x10_0000)
        let initrd = BootFixtures.pattern(7000, seed: 9)
        let (_, entry) = try load(Self.kernel(), cmdline: "console=hvc0 answer=42", initrd: initrd, memory: memory, in: scratch)

        var expected = EntryState(mode: .protected, rip: 0x10_0040)
        expected.rbx = startInfo
        #expect(entry == BootEntry(state: expected))
        #expect(try memory.bytes(0x10_0000, count: Self.code.count) == Self.code)
        #expect(try memory.bytes(0x10_0300, count: 0x1D00) == [UInt8](repeating: 0, count: 0x1D00))

        #expect(try memory.readValue(startInfo, as: UInt32.self) == 0x336E_C578)
        #expect(try memory.readValue(startInfo + 4, as: UInt32.self) == 1)
        let cmdline: UInt64 = try memory.readValue(startInfo + 24)
        #expect(try BootFixtures.cString(memory, at: cmdline) == "console=hvc0 answer=42")
        #expect(try memory.readValue(startInfo + 32, as: UInt64.self) == 0)     // no RSDP yet

        #expect(try memory.readValue(startInfo + 12, as: UInt32.self) == 1)
        let modlist: UInt64 = try memory.readValue(startInfo + 16)
        let paddr: UInt64 = try memory.readValue(modlist)
        #expect(paddr == (64 << 20) - 0x2000)
        #expect(try memory.readValue(modlist + 8, as: UInt64.self) == 7000)
        #expect(try memory.bytes(paddr, count: initrd.count) == initrd)

        let e820 = E820Map(memoryMap: memory.map)
        let memmap: UInt64 = try memory.readValue(startInfo + 40)
        #expect(try memory.readValue(startInfo + 48, as: UInt32.self) == UInt32(e820.entries.count))
        for (i, e) in e820.entries.enumerated() {
            let at = memmap + UInt64(i * 24)
            #expect(try memory.readValue(at, as: UInt64.self) == e.start)
            #expect(try memory.readValue(at + 8, as: UInt64.self) == e.size)
            #expect(try memory.readValue(at + 16, as: UInt32.self) == e.kind.rawValue)
        }
        // Flat 32-bit GDT for the protected-mode entry.
        #expect(try memory.readValue(0x508, as: UInt64.self) == CPUMode.code32)
        #expect(try memory.readValue(0x510, as: UInt64.self) == CPUMode.data32)
    }

    @Test func elf32WithFourByteNoteAndNoInitrd() throws {
        let scratch = try Scratch()
        let note = ELFFixture.xenNote(descriptor: ELFFixture.littleEndian(UInt32(0x10_0010)))
        let (memory, entry) = try load(Self.kernel(is64: false, note: note), in: scratch)
        #expect(entry.state.rip == 0x10_0010)
        #expect(try memory.readValue(startInfo + 12, as: UInt32.self) == 0)
        #expect(try memory.readValue(startInfo + 16, as: UInt64.self) == 0)
    }

    func expectRefused(_ fixture: ELFFixture, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let scratch = try Scratch()
        let path = try scratch.write(fixture.bytes, "vmlinux")
        let memory = try BootFixtures.memory()
        expectBootError(path, fragment, sourceLocation: sourceLocation) {
            _ = try PVHImage(path: path).load(into: memory, e820: E820Map(memoryMap: memory.map))
        }
    }

    @Test func withoutTheEntryNote() throws {
        let otherNote = ELFFixture.xenNote(type: 5, descriptor: Array("linux".utf8))
        try expectRefused(Self.kernel(note: otherNote), "no Xen PHYS32_ENTRY note (type 18) in any PT_NOTE segment")
        let bad = ELFFixture.xenNote(descriptor: [1, 2])
        try expectRefused(Self.kernel(note: bad), "a 2-byte descriptor, not 4 or 8")
        let high = ELFFixture.xenNote(descriptor: ELFFixture.littleEndian(UInt64(0x1_0000_0000)))
        try expectRefused(Self.kernel(note: high), "above 4 GiB")
    }

    @Test func entryOutsideEverySegment() throws {
        try expectRefused(Self.kernel(entry: 0x20_0000), "the PVH entry 0x200000 is not inside any PT_LOAD segment")
    }

    @Test func withoutPTLoad() throws {
        try expectRefused(Self.kernel(segments: []), "no PT_LOAD segment: nothing to load")
    }

    @Test func segmentPastTheEndOfTheFile() throws {
        let s = ELFFixture.Segment(address: 0x10_0000, data: Self.code, memorySize: 0x10_0000, fileSize: 0x10_0000)
        try expectRefused(Self.kernel(segments: [s]), "truncated: segment 0 (PT_LOAD): file bytes")
        let far = ELFFixture.Segment(address: 0x10_0000, data: Self.code, offset: 0xFFFF_FFFF_FFFF_FF00)
        try expectRefused(Self.kernel(segments: [far]), "run past the end of the file")
    }

    @Test func segmentOutsideRAM() throws {
        let s = ELFFixture.Segment(address: 0x10_0000, data: Self.code, memorySize: 0x400_0000)
        try expectRefused(Self.kernel(segments: [s]), "segment 0 (PT_LOAD): 0x100000-0x40fffff is not in usable guest RAM")
        let hole = ELFFixture.Segment(address: 0xFEC0_0000, data: Self.code)
        try expectRefused(Self.kernel(entry: 0xFEC0_0000, segments: [hole]), "is not in usable guest RAM")
        let high = ELFFixture.Segment(address: 0xFFFF_F000, data: Self.code, memorySize: 0x2000)
        try expectRefused(Self.kernel(entry: 0xFFFF_F000, segments: [high]), "reaches above 0x100000000")
        let bios = ELFFixture.Segment(address: 0xF_0000, data: Self.code)
        try expectRefused(Self.kernel(entry: 0xF_0000, segments: [bios]), "0xf0000-0xf02ff is not in usable guest RAM")
    }

    @Test func segmentOverTheLoadersOwnStructures() throws {
        // Only page 0 is the loader's own (IVT, BIOS data area, boot GDT); everything else it
        // builds goes where the kernel is not.
        let s = ELFFixture.Segment(address: 0x800, data: Self.code)
        try expectRefused(Self.kernel(entry: 0x800, segments: [s]),
                          "segment 0 (PT_LOAD): 0x800-0xaff overlaps the real-mode IVT, BIOS data area and boot GDT at 0x0-0xfff")
    }

    @Test func overlappingSegments() throws {
        let a = ELFFixture.Segment(address: 0x10_0000, data: Self.code, memorySize: 0x2000)
        let b = ELFFixture.Segment(address: 0x10_1000, data: Self.code)
        try expectRefused(Self.kernel(segments: [a, b]),
                          "segment 0 (PT_LOAD) (0x100000-0x101fff) and segment 1 (PT_LOAD) (0x101000-0x1012ff) overlap")
    }

    @Test func fileSizeAboveMemorySize() throws {
        let s = ELFFixture.Segment(address: 0x10_0000, data: Self.code, memorySize: 0x100)
        try expectRefused(Self.kernel(segments: [s]), "0x300 file bytes exceed its memory size 0x100")
    }

    @Test func notAnX86Executable() throws {
        var f = Self.kernel()
        f.machine = 183                                       // AArch64
        try expectRefused(f, "ELF machine 183 is neither 3 (i386) nor 62 (x86-64)")
        f = Self.kernel()
        f.type = 3                                            // ET_DYN
        try expectRefused(f, "ELF type 3 is not 2 (ET_EXEC)")
        let scratch = try Scratch()
        let text = try scratch.write(Array("#!/bin/sh\n".utf8), "script")
        let memory = try BootFixtures.memory()
        expectBootError(text, "not an ELF file") {
            _ = try PVHImage(path: text).load(into: memory, e820: E820Map(memoryMap: memory.map))
        }
        let truncated = try scratch.write(Array(Self.kernel().bytes[0..<30]), "short")
        expectBootError(truncated, "truncated: e_entry at offset 0x18+0x8") {
            _ = try PVHImage(path: truncated).load(into: memory, e820: E820Map(memoryMap: memory.map))
        }
    }

    @Test func programHeaderTablePastTheEnd() throws {
        var bytes = Self.kernel().bytes
        bytes[56] = 0xFF                                      // e_phnum = 0x00FF
        let scratch = try Scratch()
        let path = try scratch.write(bytes, "vmlinux")
        let memory = try BootFixtures.memory()
        expectBootError(path, "truncated: program header table (255 entries)") {
            _ = try PVHImage(path: path).load(into: memory, e820: E820Map(memoryMap: memory.map))
        }
    }

    @Test func noteRunningPastItsSegment() throws {
        var note = ELFFixture.xenNote(descriptor: ELFFixture.littleEndian(UInt64(0x10_0040)))
        note[4] = 0x40                                        // descsz 64 in a 24-byte note
        try expectRefused(Self.kernel(note: note), "a note descriptor of 64 bytes runs past the segment's end")
    }
}
