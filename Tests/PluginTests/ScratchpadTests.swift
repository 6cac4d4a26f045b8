import Testing
import VeneerHarness
import VeneerHost

/// The C example plugin (examples/plugins/scratchpad), built with its own Makefile and driven
/// through the harness exactly as a third party would test theirs.
@Suite struct ScratchpadTests {
    static let port: UInt16 = 0x510
    static let mmio: UInt64 = 0xd000_0000
    static let id: UInt64 = 0x5352_4356

    let pad: PluginHarness

    init() throws {
        pad = try PluginHarness(plugin: try TestSupport.scratchpad())
    }

    @Test func describesItself() {
        let info = pad.library.info
        #expect(info.name == "scratchpad")
        #expect(info.kind == .emulated)
        #expect(info.stateVersion == 1)
        #expect(info.parameters.map(\.name) == ["port", "mmio_base", "irq"])
        #expect(info.parameters.last?.kind == .int(min: 0, max: 23))
        #expect(pad.host.logLines == ["scratchpad 'dut': ports 0x510-0x51f, MMIO 0xd0000000-0xd0000fff, IRQ 5"])
    }

    @Test func registersBothWindows() {
        #expect(pad.host.regions.map(\.kind) == [.pio, .mmio])
        #expect(pad.host.regions.map(\.base) == [0x510, Self.mmio])
        #expect(pad.host.regions.map(\.length) == [16, 4096])
    }

    @Test func idRegisterReadsTheMagicInEveryWidth() {
        #expect(pad.read(port: Self.port, size: 4) == Self.id)
        #expect(pad.read(port: Self.port, size: 2) == 0x4356)
        #expect(pad.read(port: Self.port, size: 1) == 0x56)  // 'V'
        #expect(pad.read(mmio: Self.mmio) == Self.id)
        #expect(pad.read(mmio: Self.mmio, size: 8) == Self.id)
        pad.write(mmio: Self.mmio, 0, size: 4)
        #expect(pad.read(mmio: Self.mmio) == Self.id, "ID is read-only")
    }

    @Test func scratchIsOneRegisterBehindBothWindows() {
        pad.write(port: Self.port + 4, 0xdead_beef, size: 4)
        #expect(pad.read(mmio: Self.mmio + 4) == 0xdead_beef)
        pad.write(mmio: Self.mmio + 4, 0x12, size: 1)  // a byte write replaces the low byte only
        #expect(pad.read(port: Self.port + 4, size: 4) == 0xdead_be12)
        #expect(pad.read(port: Self.port + 4, size: 2) == 0xbe12)
        pad.write(mmio: Self.mmio + 4, 0x1_2345_6789, size: 8)  // 64-bit: the low 32 bits
        #expect(pad.read(mmio: Self.mmio + 4, size: 8) == 0x2345_6789)
    }

    @Test func countsEveryWriteAndIgnoresOtherOffsets() {
        pad.write(port: Self.port, 1)                   // ID: read-only
        pad.write(port: Self.port + 8, 0xff, size: 4)   // WRITE_COUNT: read-only
        pad.write(port: Self.port + 5, 0xaa)            // inside SCRATCH, unaligned
        pad.write(mmio: Self.mmio + 0x800, 7)           // past the register file
        pad.read(mmio: Self.mmio + 4)                   // reads do not count
        #expect(pad.read(mmio: Self.mmio + 8) == 4)
        #expect(pad.read(port: Self.port + 4, size: 4) == 0, "stray writes leave SCRATCH alone")
        #expect(pad.read(port: Self.port + 5) == 0)
        #expect(pad.read(mmio: Self.mmio + 0x800) == 0)
        #expect(pad.read(mmio: Self.mmio + 0xffc) == 0)
    }

    @Test func irqRegisterDrivesALevel() {
        pad.write(port: Self.port + 12, 1, size: 4)
        #expect(pad.host.irqLevels[5] == true)
        #expect(pad.read(mmio: Self.mmio + 12) == 1)
        pad.write(mmio: Self.mmio + 12, 1)  // already high: no new edge
        pad.write(mmio: Self.mmio + 12, 0)
        #expect(pad.host.irqLevels[5] == false)
        #expect(pad.read(port: Self.port + 12, size: 4) == 0)
        #expect(pad.host.irqEvents.map(\.level) == [true, false])
        #expect(pad.host.irqEvents.allSatisfy { $0.line == 5 })
    }

    @Test func resetRestoresPowerOnStateAndLowersTheLine() throws {
        pad.write(port: Self.port + 4, 0x55, size: 4)
        pad.write(port: Self.port + 12, 1)
        try pad.reset()
        #expect(pad.read(port: Self.port + 4, size: 4) == 0)
        #expect(pad.read(port: Self.port + 8, size: 4) == 0)
        #expect(pad.host.irqLevels[5] == false)
    }

    @Test func parametersMoveWindowsAndLine() throws {
        let moved = try PluginHarness(
            plugin: try TestSupport.scratchpad(),
            parameters: ["port": .int(0x600), "mmio_base": .int(0xe000_1000), "irq": .int(11)])
        #expect(moved.host.regions.map(\.base) == [0x600, 0xe000_1000])
        #expect(moved.read(port: 0x600, size: 4) == Self.id)
        #expect(moved.read(mmio: 0xe000_1000) == Self.id)
        moved.write(mmio: 0xe000_100c, 1)
        #expect(moved.host.irqLevels == [11: true])
    }

    @Test func refusesAnUnalignedWindowWithAReason() throws {
        let error = #expect(throws: PluginDeviceError.self) {
            try PluginHarness(plugin: try TestSupport.scratchpad(), parameters: ["mmio_base": .int(0xd000_0800)])
        }
        #expect(error?.operation == "create")
        #expect(error?.reason == "mmio_base 0xd0000800 is not 4 KiB aligned")
    }

    @Test func reportsARefusedRegistration() throws {
        // Guest RAM starts at 0: the host refuses an MMIO window on top of it.
        let error = #expect(throws: PluginDeviceError.self) {
            try PluginHarness(plugin: try TestSupport.scratchpad(), parameters: ["mmio_base": .int(0x1000)])
        }
        #expect(error?.reason == "cannot claim MMIO 0x1000-0x1fff (status -4)")
    }

    @Test func saveWritesTheDocumentedLayout() throws {
        pad.write(port: Self.port + 4, 0x0403_0201, size: 4)
        pad.write(port: Self.port + 12, 1)
        // scratch, then the write count (2), then the IRQ level, all little-endian
        #expect(try pad.save() == [1, 2, 3, 4, 2, 0, 0, 0, 1])
    }

    @Test func loadRestoresRegistersAndDrivesTheLine() throws {
        let other = try PluginHarness(plugin: try TestSupport.scratchpad())
        try other.load([0xef, 0xbe, 0xad, 0xde, 7, 0, 0, 0, 1])
        #expect(other.read(mmio: Self.mmio + 4) == 0xdead_beef)
        #expect(other.read(mmio: Self.mmio + 8) == 7)
        #expect(other.read(mmio: Self.mmio + 12) == 1)
        #expect(other.host.irqLevels[5] == true)
        #expect(try other.save() == [0xef, 0xbe, 0xad, 0xde, 7, 0, 0, 0, 1])
    }

    @Test(arguments: [
        (bytes: [UInt8](repeating: 0, count: 8), version: UInt32(1)),   // short
        (bytes: [UInt8](repeating: 0, count: 10), version: UInt32(1)),  // long
        (bytes: [0, 0, 0, 0, 0, 0, 0, 0, 2], version: UInt32(1)),       // IRQ level 2
        (bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0], version: UInt32(2)),       // unknown version
    ])
    func loadRejectsMalformedStateAndKeepsItsOwn(bytes: [UInt8], version: UInt32) throws {
        pad.write(port: Self.port + 4, 0x77)
        let before = try pad.save()
        let error = #expect(throws: PluginDeviceError.self) { try pad.load(bytes, version: version) }
        #expect(error?.operation == "load")
        #expect(try pad.save() == before)
    }

    @Test func passesTheConformanceSuite() throws {
        for seed: UInt64 in [ConformanceSuite.defaultSeed, 1, 0xdead_beef] {
            let report = ConformanceSuite(plugin: try TestSupport.scratchpad(), seed: seed, accesses: 5_000).run()
            #expect(report.allPassed, "\(report.checks.filter { !$0.passed }.map(\.line))")
            #expect(report.checks.map(\.name) == [
                "load", "create", "reset idempotent", "save/load round trip", "load rejects bad state", "random accesses",
            ])
        }
    }

    @Test func passesTheConformanceSuiteWithParameters() throws {
        let report = ConformanceSuite(
            plugin: try TestSupport.scratchpad(), parameters: ["port": "0x2f0", "irq": "23"], accesses: 2_000
        ).run()
        #expect(report.allPassed, "\(report.checks.filter { !$0.passed }.map(\.line))")
        #expect(report.checks.first { $0.name == "create" }?.message.contains("PIO 0x2f0+0x10") == true)
    }
}
