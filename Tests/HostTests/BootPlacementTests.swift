import Testing
@testable import VeneerHost

/// The allocator every loader places its boot structures, modules and initrds with, on its own
/// (overlapping and hostile layouts, seeded random use) and through the loaders (kernels at
/// addresses that once held fixed boot structures, RAM really running out).
@Suite struct BootPlacementTests {
    static func e820(_ ram: UInt64 = 64 << 20) throws -> E820Map { E820Map(memoryMap: try MemoryMap.pc(ramBytes: ram)) }

    @Test func freeRAMIsTheUsableMapWithoutPageZero() throws {
        let map = try Self.e820()
        let placement = BootPlacement(e820: map)
        #expect(placement.free == [0x1000..<E820Map.conventionalEnd, E820Map.highMemoryStart..<(64 << 20)])
        #expect(placement.occupants == [BootPlacement.pageZero])
    }

    @Test func firmwareTablesAndHolesAreNeverHandedOut() throws {
        var map = try Self.e820()
        map.mark(0x20_0000..<0x30_0000, as: .acpi)
        var placement = BootPlacement(e820: map)
        #expect(placement.claim(0x20_0000..<0x20_1000, name: "k")?.contains("is not in usable guest RAM") == true)
        #expect(placement.claim(0xE_0000..<0xE_1000, name: "k")?.contains("is not in usable guest RAM") == true)
        // The highest fit below 3 MiB skips the ACPI range and lands below it.
        let at = placement.takeHighest("x", size: 0x1000, within: 0..<0x30_0000)
        #expect(at == 0x1F_F000)
    }

    @Test func claimsNameWhatTheyOverlap() throws {
        var placement = BootPlacement(e820: try Self.e820())
        #expect(placement.claim(0x10_0000..<0x20_0000, name: "kernel segment 0") == nil)
        #expect(placement.claim(0x1F_F000..<0x20_1000, name: "kernel segment 1") == "overlaps the kernel segment 0 at 0x100000-0x1fffff")
        #expect(placement.claim(0x800..<0x900, name: "low") == "overlaps the real-mode IVT, BIOS data area and boot GDT at 0x0-0xfff")
        // An empty segment still names a byte: one at an occupied address is refused.
        #expect(placement.claim(0x10_0000..<0x10_0000, name: "empty") != nil)
    }

    @Test func lowestAndHighestFitsRespectAlignmentAndWindow() throws {
        var placement = BootPlacement(e820: try Self.e820())
        #expect(placement.takeLowest("a", size: 10, alignment: 16, within: BootPlacement.conventional) == 0x1000)
        #expect(placement.takeLowest("b", size: 10, alignment: 16, within: BootPlacement.conventional) == 0x1010)
        #expect(placement.takeLowest("c", size: 0x1000, alignment: 0x1000, within: BootPlacement.conventional) == 0x2000)
        #expect(placement.takeHighest("d", size: 1, alignment: 0x1000, within: 0..<0x10_0000) == 0x9_F000)
        #expect(placement.takeHighest("e", size: 0x1000, within: BootPlacement.highMemory(below: 0x20_0000)) == 0x1F_F000)
        // Not a power of two, larger than anything, or a window with no RAM: nothing.
        #expect(placement.takeLowest("f", size: 8, alignment: 24, within: BootPlacement.below4GiB) == nil)
        #expect(placement.takeHighest("g", size: 8, alignment: 0, within: BootPlacement.below4GiB) == nil)
        #expect(placement.takeHighest("h", size: UInt64.max, within: 0..<UInt64.max) == nil)
        #expect(placement.takeLowest("i", size: UInt64.max - 5, alignment: 1 << 63, within: 0..<UInt64.max) == nil)
        #expect(placement.takeLowest("j", size: 1, within: 0xA_0000..<0x10_0000) == nil)
        #expect(placement.takeLowest("k", size: 1, alignment: 1 << 63, within: 0..<UInt64.max) == nil)
    }

    /// Seeded random layouts: fragmented maps, overlapping forced occupations and random requests.
    /// Whatever comes back is aligned, inside its window, usable, and clear of everything placed.
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func randomLayoutsNeverDoubleBook(seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        var map = try Self.e820(128 << 20)
        for _ in 0..<Int.random(in: 0...20, using: &random) {
            let start = UInt64.random(in: 0..<(128 << 20), using: &random) & ~0xFFF
            map.mark(start..<start + UInt64.random(in: 1...0x40_0000, using: &random), as: .reserved)
        }
        var placement = BootPlacement(e820: map)
        var taken: [Range<UInt64>] = []
        for step in 0..<400 {
            let alignment = UInt64(1) << UInt64.random(in: 0...22, using: &random)
            let size = [0, 1, 7, 0x1000, 0x1001, 0x10_0000, UInt64.random(in: 0...0x80_0000, using: &random), UInt64.max]
                .randomElement(using: &random) ?? 1
            let low = UInt64.random(in: 0..<(160 << 20), using: &random)
            let window = low..<low + UInt64.random(in: 1...(64 << 20), using: &random)
            switch Int.random(in: 0..<4, using: &random) {
            case 0:
                let start = UInt64.random(in: 0..<(160 << 20), using: &random)
                let range = start..<start + UInt64.random(in: 0...0x20_0000, using: &random)
                if placement.claim(range, name: "claim \(step)") == nil {
                    #expect(!taken.contains { $0.overlaps(range) } && map.isUsable(range))
                    taken.append(range)
                }
                continue
            case 1:
                // Forced occupations may overlap anything; nothing handed out later may touch them.
                let start = UInt64.random(in: 0..<(160 << 20), using: &random)
                let range = start..<start + UInt64.random(in: 0...0x40_0000, using: &random)
                placement.occupy(BootPlacement.Occupant(name: "forced \(step)", range: range))
                taken.append(range)
                continue
            case 2:
                guard let at = placement.takeLowest("low \(step)", size: size, alignment: alignment, within: window) else { continue }
                check(at, size, alignment, window)
            default:
                guard let at = placement.takeHighest("high \(step)", size: size, alignment: alignment, within: window) else { continue }
                check(at, size, alignment, window)
            }

            func check(_ at: UInt64, _ size: UInt64, _ alignment: UInt64, _ window: Range<UInt64>) {
                let range = at..<at + max(size, 1)
                #expect(at % alignment == 0)
                #expect(window.lowerBound <= range.lowerBound && range.upperBound <= window.upperBound)
                #expect(map.isUsable(range) && !range.overlaps(0..<0x1000))
                #expect(!taken.contains { $0.overlaps(range) }, "step \(step): \(describe(range)) double-booked")
                taken.append(range)
            }
        }
        // The free list stays sorted, disjoint and clear of everything taken.
        for (a, b) in zip(placement.free, placement.free.dropFirst()) { #expect(a.upperBound <= b.lowerBound) }
        for f in placement.free { #expect(!f.isEmpty && !taken.contains { $0.overlaps(f) }) }
    }

    @Test func bootDataFallsBackToHighRAMThenRunsOut() throws {
        var placement = BootPlacement(e820: try Self.e820(2 << 20))
        #expect(placement.claim(0x1000..<E820Map.conventionalEnd, name: "kernel segment 0") == nil)
        // Conventional memory is full: the highest fit below 4 GiB.
        #expect(try placement.placeBootData("zero page", size: 0x1000, alignment: 0x1000) == 0x1F_F000)
        #expect(placement.claim(0x10_0000..<0x1F_F000, name: "kernel segment 1") == nil)
        let error = #expect(throws: PlacementError.self) { try placement.placeBootData("command line", size: 16) }
        #expect(error?.description == "no room for the command line (16 bytes) in usable RAM below 0x100000000: the largest free piece is 0 bytes; "
            + "occupied: kernel segment 0 0x1000-0x9fbff, zero page 0x1ff000-0x1fffff, kernel segment 1 0x100000-0x1fefff")
    }

    // MARK: the loaders

    @Test func multibootKernelAtTheOldBootInformationAddress() throws {
        let scratch = try Scratch()
        let code = BootFixtures.pattern(0x200, seed: 9)
        let kernel = ELFFixture(is64: false, entry: 0x8010, segments: [
            ELFFixture.Segment(address: 0x8000, data: MultibootHeaderFixture().bytes + code, memorySize: 0x2_0000),
        ])
        let path = try scratch.write(kernel.bytes, "low.elf")
        let module = try scratch.write(BootFixtures.pattern(0x1800, seed: 3), "module")
        let memory = try BootFixtures.memory()
        let entry = try MultibootImage(path: path, cmdline: "low kernel", modules: [.init(path: module, cmdline: "m")])
            .load(into: memory, e820: E820Map(memoryMap: memory.map))
        let kernelRange: Range<UInt64> = 0x8000..<0x2_8000
        #expect(entry.state.rip == 0x8010)
        let info = entry.state.rbx
        #expect(info == 0x1000)
        func u32(_ offset: UInt64) throws -> UInt64 { UInt64(try memory.readValue(info + offset, as: UInt32.self)) }
        // Every structure the loader wrote is clear of the kernel, and the kernel is intact.
        for address in [info, try u32(16), try u32(24), try u32(48), try u32(64)] { #expect(!kernelRange.contains(address)) }
        #expect(try BootFixtures.cString(memory, at: try u32(16)) == "low kernel")
        #expect(try memory.bytes(0x8000 + 12, count: code.count) == code)
        #expect(try memory.bytes(0x8000 + 12 + 0x200, count: 0x100) == [UInt8](repeating: 0, count: 0x100))
    }

    @Test func multibootInformationGoesHighWhenTheKernelFillsConventionalMemory() throws {
        let scratch = try Scratch()
        let kernel = ELFFixture(is64: false, entry: 0x1010, segments: [
            ELFFixture.Segment(address: 0x1000, data: MultibootHeaderFixture().bytes + BootFixtures.pattern(0x100),
                               memorySize: E820Map.conventionalEnd - 0x1000),
        ])
        let path = try scratch.write(kernel.bytes, "fill.elf")
        let module = try scratch.write(BootFixtures.pattern(0x3000, seed: 4), "module")
        let memory = try BootFixtures.memory(16 << 20)
        let entry = try MultibootImage(path: path, modules: [.init(path: module)]).load(into: memory, e820: E820Map(memoryMap: memory.map))
        let info = entry.state.rbx
        let moduleStart = UInt64(try memory.readValue(UInt64(try memory.readValue(info + 24, as: UInt32.self)), as: UInt32.self))
        #expect(moduleStart == (16 << 20) - 0x3000)
        #expect(info >= E820Map.highMemoryStart && info + 116 <= moduleStart)
    }

    @Test func manyModulesAndLongStringsFitWhenRAMDoes() throws {
        let scratch = try Scratch()
        let small = try scratch.write([1, 2, 3], "small")
        let modules = (0..<300).map { MultibootImage.Module(path: small, cmdline: $0 == 0 ? String(repeating: "y", count: 0x1_0000) : "m\($0)") }
        let memory = try BootFixtures.memory()
        let kernel = try scratch.write(MultibootImageTests.elfKernel().bytes, "kernel")
        let entry = try MultibootImage(path: kernel, modules: modules).load(into: memory, e820: E820Map(memoryMap: memory.map))
        let info = entry.state.rbx
        #expect(try memory.readValue(info + 20, as: UInt32.self) == 300)
        let list = UInt64(try memory.readValue(info + 24, as: UInt32.self))
        let last = list + 299 * 16
        #expect(try BootFixtures.cString(memory, at: UInt64(try memory.readValue(last + 8, as: UInt32.self))) == "m299")
        let first = UInt64(try memory.readValue(list + 8, as: UInt32.self))
        #expect(try memory.bytes(first, count: 0x1_0001) == [UInt8](repeating: 0x79, count: 0x1_0000) + [0])
    }

    @Test func bzImageLongModePageTablesArePlacedAndUsed() throws {
        let scratch = try Scratch()
        let path = try scratch.write(BzImageFixture().bytes, "bzImage")
        let memory = try BootFixtures.memory()
        let entry = try BzImage(path: path, cmdline: "x").load(into: memory, e820: E820Map(memoryMap: memory.map))
        #expect(entry.state.mode == .long)
        let root = entry.state.pageTables
        #expect(root % 0x1000 == 0 && root != entry.state.rsi)
        let pdpt: UInt64 = try memory.readValue(root)
        #expect(pdpt == (root + 0x1000) | 3)
        #expect(try memory.readValue(root + 8, as: UInt64.self) == 0)
        #expect(try memory.readValue(root + 0x2000 + 8, as: UInt64.self) == 0x20_0083)   // 2 MiB page 1 of the first GiB
    }

    @Test func bzImageRefusedOnlyWhenRAMIsReallyGone() throws {
        let scratch = try Scratch()
        // A fixed kernel at 1 MiB whose init_size takes all high RAM, with conventional memory
        // marked reserved: nowhere for the zero page.
        var fixture = BzImageFixture()
        fixture.relocatable = false
        fixture.initSize = UInt32((16 << 20) - 0x10_0000)
        let path = try scratch.write(fixture.bytes, "bzImage")
        let memory = try BootFixtures.memory(16 << 20)
        var map = E820Map(memoryMap: memory.map)
        #expect(throws: Never.self) { _ = try BzImage(path: path).load(into: memory, e820: map) }
        map.mark(0x1000..<E820Map.conventionalEnd, as: .reserved)
        expectBootError(path, "no room for the zero page (4096 bytes) in usable RAM below 0x100000000") {
            _ = try BzImage(path: path).load(into: memory, e820: map)
        }
    }
}
