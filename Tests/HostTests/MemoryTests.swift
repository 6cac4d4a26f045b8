import Testing
@testable import VeneerHost

struct MemoryMapTests {
    @Test func smallVMHasOneRAMRegionAndTheHole() throws {
        let map = try MemoryMap.pc(ramBytes: 64 << 20)
        #expect(map.regions.map(\.name) == ["ram-low", "mmio-hole"])
        #expect(map.ramBytes == 64 << 20)
        #expect(map.region(containing: 0xFEE0_0000)?.kind == .mmio)
        #expect(map.region(containing: 64 << 20) == nil, "the gap between RAM and the hole is nothing")
    }

    @Test func largeVMSplitsAroundTheHole() throws {
        let map = try MemoryMap.pc(ramBytes: 5 << 30)
        #expect(map.regions.map(\.name) == ["ram-low", "mmio-hole", "ram-high"])
        #expect(map.regions[0].end == MemoryMap.lowRAMLimit)
        #expect(map.regions[2].start == MemoryMap.fourGiB)
        #expect(map.regions[2].size == (5 << 30) - MemoryMap.lowRAMLimit)
        #expect(map.ramBytes == 5 << 30)
    }

    @Test func romsAreCarvedOutOfTheHole() throws {
        let rom = MemoryMap.Region(name: "bios", start: 0xFFFE_0000, size: 0x20000, kind: .rom)
        let map = try MemoryMap.pc(ramBytes: 16 << 20, roms: [rom])
        #expect(map.region(containing: 0xFFFF_FFF0)?.name == "bios")
        #expect(map.region(containing: 0xFFFD_FFFF)?.kind == .mmio)
    }

    @Test func rejectsBadSizesAndOverlaps() {
        #expect(throws: MemoryMap.LayoutError.ramTooSmall(4096)) { try MemoryMap.pc(ramBytes: 4096) }
        #expect(throws: MemoryMap.LayoutError.ramTooLarge(2 << 40)) { try MemoryMap.pc(ramBytes: 2 << 40) }
        let a = MemoryMap.Region(name: "a", start: 0, size: 0x2000, kind: .ram)
        let b = MemoryMap.Region(name: "b", start: 0x1000, size: 0x2000, kind: .ram)
        #expect(throws: MemoryMap.LayoutError.overlap("a", "b")) { try MemoryMap(regions: [a, b]) }
        let odd = MemoryMap.Region(name: "odd", start: 0x100, size: 0x1000, kind: .ram)
        #expect(throws: MemoryMap.LayoutError.notPageAligned("odd", 0x100)) { try MemoryMap(regions: [odd]) }
    }

    @Test(arguments: [
        (UInt64(0), UInt64(1), true), (0x3FF_FFFF, 1, true), (0x3FF_FFFF, 2, false),
        (0x400_0000, 1, false), (UInt64.max, 1, false), (UInt64.max - 1, 8, false), (0, 0x400_0001, false),
    ])
    func containmentNeverOverflows(address: UInt64, length: UInt64, inside: Bool) throws {
        let map = try MemoryMap.pc(ramBytes: 64 << 20)
        #expect((map.region(containing: address, length: length)?.kind == .ram) == inside)
    }
}

struct GuestMemoryTests {
    let memory: GuestMemory

    init() throws { memory = try GuestMemory(map: try MemoryMap.pc(ramBytes: 4 << 20)) }

    @Test func roundTripsValuesAndBytes() throws {
        try memory.writeValue(UInt32(0xDEAD_BEEF), at: 0x1000)
        #expect(try memory.readValue(0x1000, as: UInt32.self) == 0xDEAD_BEEF)
        #expect(try memory.bytes(0x1000, count: 4) == [0xEF, 0xBE, 0xAD, 0xDE])
        try memory.load([1, 2, 3], at: (4 << 20) - 3)
        #expect(try memory.bytes((4 << 20) - 3, count: 3) == [1, 2, 3])
    }

    @Test func refusesAnythingOutsideRAM() {
        let end = UInt64(4 << 20)
        #expect(throws: GuestMemoryError.outsideRAM(address: end - 2, length: 4)) { try memory.readValue(end - 2, as: UInt32.self) }
        #expect(throws: GuestMemoryError.outsideRAM(address: UInt64.max - 1, length: 4)) {
            try memory.writeValue(UInt32(1), at: UInt64.max - 1)
        }
        #expect(throws: GuestMemoryError.outsideRAM(address: 0xFEE0_0000, length: 8)) { try memory.bytes(0xFEE0_0000, count: 8) }
        #expect(memory.pointer(end - 8, length: 16, writable: false) == nil)
        #expect(memory.pointer(0, length: end, writable: true) != nil)
    }
}

struct StopControllerTests {
    @Test func firstReasonWinsAndLateKickersAreKickedAtOnce() throws {
        let stop = try StopController()
        let kicked = KickCounter()
        stop.addKicker { kicked.bump() }
        stop.request(.guestExit(3))
        stop.request(.powerOff)
        #expect(stop.wait() == .guestExit(3))
        stop.addKicker { kicked.bump() }
        #expect(kicked.count == 2)
    }
}

import Synchronization
final class KickCounter: Sendable {
    private let value = Mutex(0)
    func bump() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}
