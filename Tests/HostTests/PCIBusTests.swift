import Synchronization
import Testing
import VeneerHost
import VeneerPluginABI

/// One address space (I/O and memory) that fake PCI functions place their BARs in, with RAM at
/// [0, 256 MiB) and conflicts refused as the VMM's buses refuse them.
final class FakeAddressSpace: Sendable {
    struct Mapping: Equatable {
        var owner: String
        var region: UInt32
        var io: Bool
        var base: UInt64
        var length: UInt64
    }

    static let ramEnd: UInt64 = 0x1000_0000
    let mappings = Mutex<[Mapping]>([])

    func map(_ m: Mapping) -> Bool {
        if !m.io, m.base < Self.ramEnd { return false }
        return mappings.withLock { all in
            guard !all.contains(where: { $0.io == m.io && $0.base < m.base + m.length && m.base < $0.base + $0.length }) else { return false }
            all.append(m)
            return true
        }
    }

    func unmap(owner: String, region: UInt32) { mappings.withLock { $0.removeAll { $0.owner == owner && $0.region == region } } }

    /// Who answers at `address`, as (owner, region).
    func decoder(io: Bool, _ address: UInt64) -> String? {
        mappings.withLock { all in
            all.first { $0.io == io && $0.base <= address && address - $0.base < $0.length }.map { "\($0.owner)/\($0.region)" }
        }
    }

    var all: [Mapping] { mappings.withLock { $0 } }
}

/// A plugin instance's side of a function, recording what the bus asks of it.
final class FakeFunctionOwner: PCIFunctionOwner {
    struct Call: Equatable {
        var function: UInt32
        var offset: UInt32
        var size: UInt32
        var flags: UInt32
        var data: UInt32
    }

    let name: String
    let space: FakeAddressSpace
    let handlesPCIConfig: Bool
    let calls = Mutex<[Call]>([])
    /// What the plugin answers for a read, if it answers (else it keeps the preset).
    let answer: @Sendable (UInt32) -> UInt32?

    init(_ name: String, space: FakeAddressSpace, handlesConfig: Bool = true, answer: @escaping @Sendable (UInt32) -> UInt32? = { _ in nil }) {
        self.name = name
        self.space = space
        handlesPCIConfig = handlesConfig
        self.answer = answer
    }

    func mapBAR(region: UInt32, io: Bool, base: UInt64, length: UInt64) -> Bool {
        space.map(.init(owner: name, region: region, io: io, base: base, length: length))
    }

    func unmapBAR(region: UInt32) { space.unmap(owner: name, region: region) }

    func forwardPCIConfig(function: UInt32, offset: UInt32, size: UInt32, flags: UInt32, data: inout UInt32) {
        calls.withLock { $0.append(Call(function: function, offset: offset, size: size, flags: flags, data: data)) }
        if flags & UInt32(VENEER_IO_WRITE) == 0, let value = answer(offset) { data = value }
    }

    var lastCall: Call? { calls.withLock { $0.last } }
}

private let memBAR = PCIFunctionRequest.BAR(size: 0x1000, flags: 0, region: 10)
private let ioBAR = PCIFunctionRequest.BAR(size: 0x20, flags: UInt32(VENEER_PCI_BAR_IO), region: 11)
private let wideBAR = PCIFunctionRequest.BAR(size: 0x4000, flags: UInt32(VENEER_PCI_BAR_MEM64 | VENEER_PCI_BAR_PREFETCH), region: 12)

private func request(bars: [PCIFunctionRequest.BAR] = [memBAR, ioBAR, wideBAR, .unused, .unused, .unused],
                     slot: UInt8 = 0, capabilityPointer: UInt8 = 0, capabilities: [UInt8] = []) -> PCIFunctionRequest {
    PCIFunctionRequest(vendorID: 0x1af4, deviceID: 0x1000, subsystemVendorID: 0x1af4, subsystemID: 1, classCode: 0x02_0000,
                       revision: 2, interruptPin: 1, interruptLine: 10, slot: slot, capabilityPointer: capabilityPointer,
                       capabilities: capabilities, bars: bars)
}

/// The core's PCI bus against fake owners: configuration-space emulation, registration rules,
/// BAR sizing and placement, conflicts, and hostile guests.
@Suite struct PCIBusTests {
    let space = FakeAddressSpace()
    final class Reports: Sendable {
        let lines = Mutex<[String]>([])
    }

    let reports = Reports()
    let bus: PCIBus

    init() {
        let reports = self.reports
        bus = PCIBus { message in reports.lines.withLock { $0.append(message) } }
    }

    func read(_ bdf: UInt32, _ offset: UInt32, size: UInt32 = 4) -> UInt32 {
        var data: UInt32 = 0x5a5a_5a5a
        #expect(bus.access(bdf: bdf, offset: offset, size: size, isWrite: false, data: &data) == .ok)
        return data
    }

    func write(_ bdf: UInt32, _ offset: UInt32, _ value: UInt32, size: UInt32 = 4) {
        var data = value
        #expect(bus.access(bdf: bdf, offset: offset, size: size, isWrite: true, data: &data) == .ok)
    }

    func add(_ owner: FakeFunctionOwner, _ r: PCIFunctionRequest = request()) throws -> UInt32 {
        try bus.register(r, owner: owner)
    }

    // MARK: the host bridge and absent functions

    @Test func hostBridgeAt0000() {
        #expect(read(0, 0x00) == 0x7192_8086)
        #expect(read(0, 0x08) == 0x0600_0003)
        #expect(read(0, 0x0c) == 0)
        #expect(read(0, 0x2c) == 0)
        #expect(bus.functions.map(\.bdf) == [0])
        write(0, 0x10, 0xffff_ffff)
        #expect(read(0, 0x10) == 0, "no BARs")
    }

    @Test func absentFunctionsAndBusesReadAllOnes() {
        #expect(read(1 << 3, 0) == 0xffff_ffff)
        #expect(read(1 << 3, 2, size: 2) == 0xffff)
        #expect(read(1, 0) == 0xffff_ffff, "00:00.1")
        #expect(read(1 << 8, 0) == 0xffff_ffff, "bus 1")
        #expect(read(0, 0x100) == 0, "a present function has no extended configuration space")
        #expect(read(1 << 3, 0x100) == 0xffff_ffff)
        write(2 << 3, 0x04, 3)
        #expect(read(2 << 3, 0x04) == 0xffff_ffff)
    }

    @Test(arguments: [(offset: UInt32(0), size: UInt32(3)), (1, 2), (2, 4), (0x1000, 1), (0, 0), (0, 8)])
    func malformedAccessesAreInvalid(offset: UInt32, size: UInt32) {
        var data: UInt32 = 0
        #expect(bus.access(bdf: 0, offset: offset, size: size, isWrite: false, data: &data) == .invalid)
        #expect(bus.access(bdf: 0x1_0000, offset: 0, size: 4, isWrite: false, data: &data) == .invalid)
    }

    // MARK: registration

    @Test func devicesAreNumberedInRegistrationOrderOrBySlot() throws {
        #expect(try add(FakeFunctionOwner("a", space: space)) == 1 << 3)
        #expect(try add(FakeFunctionOwner("b", space: space), request(slot: 4)) == 4 << 3)
        #expect(try add(FakeFunctionOwner("c", space: space)) == 2 << 3)
        let busy = #expect(throws: PCIRegistrationError.self) { try add(FakeFunctionOwner("d", space: space), request(slot: 4)) }
        #expect(busy?.kind == .busy)
        let bad = #expect(throws: PCIRegistrationError.self) { try add(FakeFunctionOwner("e", space: space), request(slot: 32)) }
        #expect(bad?.kind == .invalid)
        for _ in 0..<28 { _ = try add(FakeFunctionOwner("f", space: space)) }
        let full = #expect(throws: PCIRegistrationError.self) { try add(FakeFunctionOwner("g", space: space)) }
        #expect(full?.reason == "all 31 device numbers of bus 0 are taken")
    }

    @Test func theHeaderShowsWhatWasRegistered() throws {
        let bdf = try add(FakeFunctionOwner("a", space: space))
        #expect(read(bdf, 0x00) == 0x1000_1af4)
        #expect(read(bdf, 0x04) == 0, "decoding off, no capabilities")
        #expect(read(bdf, 0x08) == 0x0200_0002)
        #expect(read(bdf, 0x2c) == 0x0001_1af4)
        #expect(read(bdf, 0x3c) == 0x0000_010a)
        #expect(read(bdf, 0x10) == 0 && read(bdf, 0x14) == 1 && read(bdf, 0x18) == 0xc, "unassigned, type bits only")
        #expect(read(bdf, 0x30) == 0 && read(bdf, 0x34) == 0)
    }

    @Test(arguments: [
        (request(bars: [.init(size: 0x1800, flags: 0, region: 1)] + Array(repeating: .unused, count: 5)), "not a power of two"),
        (request(bars: [.init(size: 8, flags: 0, region: 1)] + Array(repeating: .unused, count: 5)), "not a power of two"),
        (request(bars: [.init(size: 512, flags: UInt32(VENEER_PCI_BAR_IO), region: 1)] + Array(repeating: .unused, count: 5)), "not a power of two"),
        (request(bars: [.init(size: 2, flags: UInt32(VENEER_PCI_BAR_IO), region: 1)] + Array(repeating: .unused, count: 5)), "not a power of two"),
        (request(bars: [.init(size: 1 << 32, flags: 0, region: 1)] + Array(repeating: .unused, count: 5)), "not a power of two"),
        (request(bars: [.init(size: 16, flags: UInt32(VENEER_PCI_BAR_IO | VENEER_PCI_BAR_MEM64), region: 1)] + Array(repeating: .unused, count: 5)), "cannot be 64-bit"),
        (request(bars: [.init(size: 16, flags: 0x80, region: 1)] + Array(repeating: .unused, count: 5)), "unknown flags"),
        (request(bars: Array(repeating: .unused, count: 5) + [wideBAR]), "BAR5 cannot be 64-bit"),
        (request(bars: [wideBAR, ioBAR] + Array(repeating: .unused, count: 4)), "BAR1 must be unused"),
        (request(bars: [memBAR, .init(size: 16, flags: 0, region: 10)] + Array(repeating: .unused, count: 4)), "reuses region id 10"),
        (request(bars: [memBAR]), "1 BAR slots"),
        (request(capabilityPointer: 0x40, capabilities: [0x01, 0x40, 0, 0]), "loops back"),
        (request(capabilityPointer: 0x40, capabilities: [0x01, 0x44, 0, 0]), "not a dword inside"),
        (request(capabilityPointer: 0x40, capabilities: [0x01, 0x42, 0, 0, 0, 0, 0, 0]), "not a dword inside"),
        (request(capabilityPointer: 0x3c, capabilities: [0x01, 0, 0, 0]), "not a dword inside"),
        (request(capabilityPointer: 0x40, capabilities: Array(repeating: 0, count: 193)), "exceed"),
    ])
    func malformedFunctionsAreRefused(r: PCIFunctionRequest, reason: String) {
        let error = #expect(throws: PCIRegistrationError.self) { try add(FakeFunctionOwner("a", space: space), r) }
        #expect(error?.kind == .invalid)
        #expect(error?.reason.contains(reason) == true, "\(error?.reason ?? "")")
        #expect(bus.functions.count == 1)
    }

    @Test func reservedIdsAndFieldsAreRefused() {
        var r = request()
        r.vendorID = 0xffff
        #expect(throws: PCIRegistrationError.self) { try add(FakeFunctionOwner("a", space: space), r) }
        r = request()
        r.classCode = 0x100_0000
        #expect(throws: PCIRegistrationError.self) { try add(FakeFunctionOwner("a", space: space), r) }
        r = request()
        r.interruptPin = 5
        #expect(throws: PCIRegistrationError.self) { try add(FakeFunctionOwner("a", space: space), r) }
    }

    @Test func aCapabilityPointerWithoutBytesNeedsTheCallback() throws {
        let r = request(capabilityPointer: 0x50)
        #expect(throws: PCIRegistrationError.self) { try add(FakeFunctionOwner("a", space: space, handlesConfig: false), r) }
        let bdf = try add(FakeFunctionOwner("b", space: space, handlesConfig: true), r)
        #expect(read(bdf, 0x34) == 0x50)
        #expect(read(bdf, 0x06, size: 2) == 0x10)
    }

    @Test func anInstanceOwnsFunctionsOrForwardsAccessesNotBoth() throws {
        let owner = FakeFunctionOwner("a", space: space)
        _ = try add(owner)
        #expect(!bus.claimMechanism(owner))
        let mechanism = FakeFunctionOwner("m", space: space)
        #expect(bus.claimMechanism(mechanism))
        #expect(bus.claimMechanism(mechanism), "claiming again is fine")
        let error = #expect(throws: PCIRegistrationError.self) { try add(mechanism) }
        #expect(error?.kind == .busy)
    }

    // MARK: BARs

    @Test func barSizing() throws {
        let bdf = try add(FakeFunctionOwner("a", space: space))
        for offset: UInt32 in stride(from: 0x10, through: 0x24, by: 4) { write(bdf, offset, 0xffff_ffff) }
        #expect(read(bdf, 0x10) == 0xffff_f000)
        #expect(read(bdf, 0x14) == 0xffff_ffe1)
        #expect(read(bdf, 0x18) == 0xffff_c00c)
        #expect(read(bdf, 0x1c) == 0xffff_ffff)
        #expect(read(bdf, 0x20) == 0 && read(bdf, 0x24) == 0)
        // A large 64-bit BAR keeps low bits of its upper dword clear too.
        let big = try add(FakeFunctionOwner("b", space: space), request(bars: [.init(size: 1 << 36, flags: UInt32(VENEER_PCI_BAR_MEM64), region: 1)] + Array(repeating: .unused, count: 5)))
        write(big, 0x10, 0xffff_ffff)
        write(big, 0x14, 0xffff_ffff)
        #expect(read(big, 0x10) == 0x0000_0004)
        #expect(read(big, 0x14) == 0xffff_fff0)
        #expect(space.all.isEmpty, "sizing with decoding off maps nothing")
    }

    @Test func enablingDecodingMapsAndMovingMoves() throws {
        let a = FakeFunctionOwner("a", space: space)
        let bdf = try add(a)
        write(bdf, 0x10, 0xe000_0000)
        write(bdf, 0x14, 0xc000)
        #expect(space.all.isEmpty)
        write(bdf, 0x04, 0x2, size: 2)  // memory only
        #expect(space.decoder(io: false, 0xe000_0000) == "a/10")
        #expect(space.decoder(io: true, 0xc000) == nil)
        #expect(space.decoder(io: false, 0) == nil, "the 64-bit BAR at 0 overlaps RAM")
        write(bdf, 0x04, 0x3, size: 2)
        #expect(space.decoder(io: true, 0xc01f) == "a/11")
        #expect(space.decoder(io: true, 0xc020) == nil)
        write(bdf, 0x10, 0xe010_0000)
        #expect(space.decoder(io: false, 0xe000_0000) == nil, "the old address stops answering")
        #expect(space.decoder(io: false, 0xe010_0fff) == "a/10", "the new one answers")
        write(bdf, 0x12, 0xe020, size: 2)  // the upper word alone
        #expect(space.decoder(io: false, 0xe020_0000) == "a/10")
        #expect(space.all.count == 2)
        write(bdf, 0x04, 0x1, size: 1)
        #expect(space.decoder(io: false, 0xe020_0000) == nil)
        #expect(space.decoder(io: true, 0xc000) == "a/11")
        write(bdf, 0x04, 0, size: 2)
        #expect(space.all.isEmpty)
        #expect(bus.functions[1].command == 0)
    }

    @Test func a64BitBARMovesAboveFourGiB() throws {
        let bdf = try add(FakeFunctionOwner("a", space: space))
        write(bdf, 0x04, 0x2, size: 2)
        write(bdf, 0x18, 0x8000_0000)
        #expect(space.decoder(io: false, 0x8000_0000) == "a/12")
        write(bdf, 0x1c, 0x20)
        #expect(space.decoder(io: false, 0x20_8000_0000) == "a/12")
        #expect(space.decoder(io: false, 0x8000_0000) == nil)
        #expect(read(bdf, 0x18) == 0x8000_000c && read(bdf, 0x1c) == 0x20)
        write(bdf, 0x1c, 0xffff_ffff)
        write(bdf, 0x18, 0xffff_ffff)
        #expect(space.decoder(io: false, 0xffff_ffff_ffff_c000) == nil, "a BAR ending at 2^64 has no representable end")
    }

    @Test func anIOBARPastPort0xFFFFIsNotDecoded() throws {
        let bdf = try add(FakeFunctionOwner("a", space: space))
        write(bdf, 0x04, 0x1, size: 2)
        write(bdf, 0x14, 0x1_0000)
        #expect(read(bdf, 0x14) == 0x1_0001, "the register keeps all 32 bits")
        #expect(space.all.isEmpty)
        write(bdf, 0x14, 0xffe0)
        #expect(space.decoder(io: true, 0xffff) == "a/11")
    }

    @Test func anOverlappingBARStaysUnmappedUntilTheRangeIsFree() throws {
        let a = FakeFunctionOwner("a", space: space), b = FakeFunctionOwner("b", space: space)
        let onlyBAR0 = request(bars: [memBAR] + Array(repeating: .unused, count: 5))
        let first = try add(a, onlyBAR0), second = try add(b, onlyBAR0)
        write(first, 0x10, 0xe000_0000)
        write(first, 0x04, 0x2, size: 2)
        write(second, 0x10, 0xe000_0000)  // onto the first device's registers
        write(second, 0x04, 0x2, size: 2)
        #expect(space.decoder(io: false, 0xe000_0000) == "a/10", "the region that was there first keeps it")
        #expect(bus.functions[2].mapped[0] == nil)
        #expect(reports.lines.withLock { $0 } == [
            "00:02.0 BAR0 at address 0xe0000000+0x1000 overlaps memory or another device: left unmapped until the range is free",
        ])
        write(second, 0x04, 0, size: 2)
        write(second, 0x04, 0x2, size: 2)
        #expect(reports.lines.withLock { $0.count } == 1, "a placement refused again is not reported again")
        write(first, 0x04, 0, size: 2)  // frees the range: everything refused is retried ...
        #expect(space.decoder(io: false, 0xe000_0000) == "b/10", "... so the second gets it")
        write(first, 0x04, 0x2, size: 2)  // and now the first is the one refused
        #expect(space.decoder(io: false, 0xe000_0000) == "b/10")
        #expect(reports.lines.withLock { $0.count } == 2)
        write(first, 0x04, 0, size: 2)
        write(second, 0x04, 0, size: 2)
        write(first, 0x04, 0x2, size: 2)
        write(second, 0x04, 0x2, size: 2)
        #expect(space.decoder(io: false, 0xe000_0000) == "a/10")
        #expect(reports.lines.withLock { $0.count } == 3)
        write(first, 0x10, 0xe010_0000)  // the first moves away ...
        #expect(space.decoder(io: false, 0xe000_0000) == "b/10", "... and the second now decodes")
        #expect(space.decoder(io: false, 0xe010_0000) == "a/10")
        write(first, 0x10, 0x0100_0000)  // onto RAM
        #expect(space.decoder(io: false, 0x0100_0000) == nil)
        #expect(bus.functions[1].mapped[0] == nil)
        #expect(reports.lines.withLock { $0.count } == 4)
    }

    @Test func removingAnOwnerFreesItsRanges() throws {
        let a = FakeFunctionOwner("a", space: space)
        let bdf = try add(a)
        write(bdf, 0x10, 0xe000_0000)
        write(bdf, 0x04, 0x2, size: 2)
        bus.remove(owner: a)
        #expect(space.all.isEmpty)
        #expect(read(bdf, 0) == 0xffff_ffff)
        #expect(try add(FakeFunctionOwner("b", space: space)) == bdf)
    }

    @Test func resetUnmapsAndClears() throws {
        let bdf = try add(FakeFunctionOwner("a", space: space))
        write(bdf, 0x10, 0xe000_0000)
        write(bdf, 0x0c, 0xffff_ffff)
        write(bdf, 0x3c, 0x33, size: 1)
        write(bdf, 0x04, 0x0547, size: 2)
        #expect(read(bdf, 0x04, size: 2) == 0x0547)
        #expect(read(bdf, 0x0c) == 0x0000_ffff, "cache line size and latency timer, header type and BIST read-only")
        bus.reset()
        #expect(space.all.isEmpty)
        #expect(read(bdf, 0x10) == 0 && read(bdf, 0x04) == 0 && read(bdf, 0x0c) == 0)
        #expect(read(bdf, 0x3c) == 0x0000_010a, "the interrupt line as registered")
    }

    @Test func readOnlyRegistersIgnoreWrites() throws {
        let bdf = try add(FakeFunctionOwner("a", space: space, handlesConfig: false))
        for offset: UInt32 in [0x00, 0x08, 0x2c, 0x30, 0x34, 0x3c] { write(bdf, offset, 0xffff_ffff) }
        #expect(read(bdf, 0x00) == 0x1000_1af4)
        #expect(read(bdf, 0x08) == 0x0200_0002)
        #expect(read(bdf, 0x2c) == 0x0001_1af4)
        #expect(read(bdf, 0x30) == 0 && read(bdf, 0x34) == 0)
        #expect(read(bdf, 0x3c) == 0x0000_01ff, "only the interrupt line is writable")
        write(bdf, 0x04, 0xffff_ffff)
        #expect(read(bdf, 0x04) == 0x0000_0547, "status bits are never set, command keeps its writable bits")
    }

    // MARK: what reaches the plugin

    @Test func beyondTheHeaderReadsArePresetAndForwarded() throws {
        let owner = FakeFunctionOwner("a", space: space) { $0 >= 0x80 ? 0xfeed_beef : nil }
        let bdf = try add(owner, request(capabilityPointer: 0x40, capabilities: [0x05, 0x00, 0x80, 0x00, 0x11, 0x22]))
        #expect(read(bdf, 0x06, size: 2) == 0x10)
        #expect(read(bdf, 0x40) == 0x0080_0005)
        #expect(owner.lastCall == .init(function: bdf, offset: 0x40, size: 4, flags: 0, data: 0x0080_0005))
        #expect(read(bdf, 0x44) == 0x2211)
        #expect(read(bdf, 0x45, size: 1) == 0x22)
        #expect(read(bdf, 0x80) == 0xfeed_beef)
        #expect(read(bdf, 0x82, size: 2) == 0xbeef, "masked to the access size")
        write(bdf, 0x40, 0x1234)
        #expect(owner.lastCall == .init(function: bdf, offset: 0x40, size: 4, flags: 1, data: 0x1234))
        #expect(read(bdf, 0x40) == 0x0080_0005, "the core keeps no copy of plugin-owned bytes")
        let calls = owner.calls.withLock { $0.count }
        _ = read(bdf, 0x3c)
        _ = read(bdf, 0x100)
        #expect(owner.calls.withLock { $0.count } == calls, "header reads and extended space stay in the core")
    }

    @Test func headerWritesAreReportedWithWhatStuck() throws {
        let owner = FakeFunctionOwner("a", space: space)
        let bdf = try add(owner)
        write(bdf, 0x04, 0xffff, size: 2)
        #expect(owner.lastCall == .init(function: bdf, offset: 4, size: 2, flags: 5, data: 0x0547))
        write(bdf, 0x13, 0xff, size: 1)
        #expect(owner.lastCall == .init(function: bdf, offset: 0x13, size: 1, flags: 5, data: 0xff))
        write(bdf, 0x10, 0xffff_ffff)
        #expect(owner.lastCall == .init(function: bdf, offset: 0x10, size: 4, flags: 5, data: 0xffff_f000))
    }

    @Test func withoutACallbackBytesPastTheHeaderAreTheCapabilities() throws {
        let owner = FakeFunctionOwner("a", space: space, handlesConfig: false)
        let bdf = try add(owner, request(capabilityPointer: 0x40, capabilities: [0x09, 0x00, 0x04, 0x77]))
        write(bdf, 0x40, 0)
        #expect(read(bdf, 0x40) == 0x7704_0009)
        #expect(read(bdf, 0xfc) == 0)
        #expect(owner.calls.withLock { $0.isEmpty })
    }

    // MARK: hostile guests

    /// Random configuration writes to three functions: the bus never overlaps two mappings,
    /// never maps a disabled BAR, and every mapped BAR is where its register says.
    @Test(arguments: [UInt64(1), 2, 3])
    func randomConfigurationWritesKeepTheInvariants(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let owners = (0..<3).map { FakeFunctionOwner("f\($0)", space: space) }
        var bdfs: [UInt32] = []
        for o in owners { bdfs.append(try add(o)) }
        var mappingsSeen = 0
        for step in 0..<20_000 {
            let bdf = rng.next() % 8 == 0 ? UInt32(rng.next() & 0xffff) : bdfs[Int(rng.next() % 3)]
            let size = UInt32(1) << UInt32(rng.next() % 3)
            let offset = UInt32(rng.next() % (rng.next() & 1 == 0 ? 0x40 : 0x1000)) & ~(size - 1)
            // Bias values towards the interesting ones: all ones, enables, hole addresses.
            let value: UInt32 = switch rng.next() % 4 {
            case 0: 0xffff_ffff
            case 1: UInt32(rng.next() % 4)
            case 2: 0xe000_0000 | UInt32(rng.next() % 4) << 12
            default: UInt32(truncatingIfNeeded: rng.next())
            }
            if rng.next() & 1 == 0 { write(bdf, offset, value, size: size) } else { _ = read(bdf, offset, size: size) }
            if step % 500 == 0 {
                try checkInvariants(bdfs)
                mappingsSeen += space.all.count
            }
        }
        try checkInvariants(bdfs)
        #expect(mappingsSeen > 10, "the run should have mapped BARs, or it checked nothing")
        bus.reset()
        #expect(space.all.isEmpty)
    }

    func checkInvariants(_ bdfs: [UInt32]) throws {
        let mappings = space.all
        for (i, m) in mappings.enumerated() {
            for n in mappings[(i + 1)...] where n.io == m.io {
                #expect(!(m.base < n.base + n.length && n.base < m.base + m.length), "\(m) overlaps \(n)")
            }
        }
        for f in bus.functions where f.bdf != 0 {
            for (slot, window) in f.mapped.enumerated() {
                guard let window else { continue }
                let low = UInt64(read(f.bdf, 0x10 + 4 * UInt32(slot)))
                let isIO = low & 1 == 1
                #expect(f.command & (isIO ? 1 : 2) != 0, "BAR\(slot) of \(PCIBus.name(f.bdf)) mapped while disabled")
                var base = low & (isIO ? ~0x3 : ~0xf)
                if low & 0x7 == 0x4 { base |= UInt64(read(f.bdf, 0x14 + 4 * UInt32(slot))) << 32 }
                #expect(window.base == base)
            }
        }
    }
}

