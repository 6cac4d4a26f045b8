import Testing
@testable import VeneerHost

@Suite struct E820Tests {
    typealias Entry = E820Map.Entry

    /// Everything below 4 GiB that is not RAM, in every layout: EBDA/VGA/BIOS, IOAPIC, LAPIC, KVM pages.
    static let platform = [
        Entry(start: 0xFEC0_0000, size: 0x1000, kind: .reserved),
        Entry(start: 0xFEE0_0000, size: 0x1000, kind: .reserved),
        Entry(start: 0xFFFB_C000, size: 0x4000, kind: .reserved),
    ]

    static func low(end: UInt64) -> [Entry] {
        [
            Entry(start: 0, size: 0x9_FC00, kind: .usable),
            Entry(start: 0x9_FC00, size: 0x6_0400, kind: .reserved),
            Entry(start: 0x10_0000, size: end - 0x10_0000, kind: .usable),
        ]
    }

    @Test func sixtyFourMiB() throws {
        let map = E820Map(memoryMap: try MemoryMap.pc(ramBytes: 64 << 20))
        #expect(map.entries == Self.low(end: 64 << 20) + Self.platform)
        #expect(map.highMemoryEnd == 64 << 20)
        #expect(map.isUsable(0x10_0000..<0x20_0000))
        #expect(!map.isUsable(0x9_F000..<0xA_0000))
    }

    @Test func exactlyThreeGiB() throws {
        let map = E820Map(memoryMap: try MemoryMap.pc(ramBytes: 3 << 30))
        #expect(map.entries == Self.low(end: 0xC000_0000) + Self.platform)
        #expect(!map.entries.contains { $0.start >= MemoryMap.fourGiB })
    }

    @Test func fiveGiBPutsTheRestAbove4GiB() throws {
        let map = E820Map(memoryMap: try MemoryMap.pc(ramBytes: 5 << 30))
        let high = Entry(start: MemoryMap.fourGiB, size: 2 << 30, kind: .usable)
        #expect(map.entries == Self.low(end: 0xC000_0000) + Self.platform + [high])
        #expect(map.highMemoryEnd == 0xC000_0000)
        #expect(!map.isUsable(0xBFFF_F000..<0xC000_1000))
    }

    @Test func acpiTablesCarvedOutOfLowRAM() throws {
        var map = E820Map(memoryMap: try MemoryMap.pc(ramBytes: 64 << 20))
        map.mark(0x3FF_0000..<0x400_0000, as: .acpi)
        #expect(Array(map.entries[2...3]) == [
            Entry(start: 0x10_0000, size: 0x3FF_0000 - 0x10_0000, kind: .usable),
            Entry(start: 0x3FF_0000, size: 0x1_0000, kind: .acpi),
        ])
        #expect(map.entries[3].kind.rawValue == 3)
        map.mark(0x20_0000..<0x20_1000, as: .reserved)
        #expect(Array(map.entries[2...4]) == [
            Entry(start: 0x10_0000, size: 0x10_0000, kind: .usable),
            Entry(start: 0x20_0000, size: 0x1000, kind: .reserved),
            Entry(start: 0x20_1000, size: 0x3FF_0000 - 0x20_1000, kind: .usable),
        ])
    }

    @Test func reservedWindowInTheHoleAndMergingNeighbours() throws {
        var map = E820Map(memoryMap: try MemoryMap.pc(ramBytes: 64 << 20))
        map.mark(0xFEC0_1000..<0xFEC0_2000, as: .reserved)     // touches the IOAPIC page: one entry
        #expect(map.entries.contains(Entry(start: 0xFEC0_0000, size: 0x2000, kind: .reserved)))
        map.mark(0x100..<0x100, as: .acpi)                      // empty: no change
        #expect(map.entries.count == 6)
        #expect(map.entries[2].kind == .usable && map.entries[2].end == 64 << 20)
    }

    @Test func romRegionsAreReserved() throws {
        let rom = MemoryMap.Region(name: "bios", start: 0xFFFC_0000, size: 0x4_0000, kind: .rom)
        let map = E820Map(memoryMap: try MemoryMap.pc(ramBytes: 64 << 20, roms: [rom]))
        // The KVM pages end where the ROM begins: one reserved run to 4 GiB.
        #expect(map.entries.last == Entry(start: 0xFFFB_C000, size: 0x4_4000, kind: .reserved))
    }
}
