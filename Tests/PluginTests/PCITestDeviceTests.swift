import Testing
import VeneerHarness
import VeneerHost

// pci-testdev through its real .so on the harness's PCI bus (the VMM's own `PCIBus`): the
// header the core emulates for it, its BARs once placed, its capability and configuration
// register, and INTA#. Configuration offsets are the PCI Local Bus specification's.
@Suite struct PCITestDeviceTests {
    static let id: UInt64 = 0x4943_5056
    let dev: PluginHarness

    init() throws {
        dev = try PluginHarness(plugin: "pci-testdev")
    }

    @Test func registersOneFunctionAtTheFirstFreeDeviceNumber() {
        #expect(dev.host.pciFunctions == [1 << 3])
        #expect(dev.pciConfigRead(0x00) == 0x7e57_fffe)
        #expect(dev.pciConfigRead(0x08) == 0xff00_0001, "class ff0000, revision 1")
        #expect(dev.pciConfigRead(0x0c) == 0, "header type 0, single function")
        #expect(dev.pciConfigRead(0x3d, size: 1) == 1, "INTA#")
        #expect(dev.pciConfigRead(0x3c, size: 1) == 11, "the irq parameter")
        #expect(dev.host.regions.isEmpty, "BARs start unassigned and decoding is off")
    }

    @Test func slotParameterPicksTheDeviceNumber() throws {
        let bus = PCIBus()
        let first = try PluginHarness(plugin: "pci-testdev", parameters: ["slot": .int(7)], pciBus: bus)
        let second = try PluginHarness(plugin: "pci-testdev", pciBus: bus)
        let third = try PluginHarness(plugin: "pci-testdev", parameters: ["device_id": .int(0x1234)], pciBus: bus)
        #expect(throws: PluginDeviceError.self) {
            try PluginHarness(plugin: "pci-testdev", parameters: ["slot": .int(7)], pciBus: bus)
        }
        #expect(third.pciConfigRead(0x02, size: 2) == 0x1234)
        // Last: ARC may end a harness's lifetime (and take its function off the bus) after its last use.
        #expect(first.pciFunction == 7 << 3)
        #expect(second.pciFunction == 1 << 3)
        #expect(third.pciFunction == 2 << 3)
    }

    @Test func barsSizeAsAFourKiBMemoryA32PortIOAndA64BitBAR() {
        for offset: UInt32 in stride(from: 0x10, through: 0x24, by: 4) { dev.pciConfigWrite(offset, 0xffff_ffff) }
        #expect(dev.pciConfigRead(0x10) == 0xffff_f000)
        #expect(dev.pciConfigRead(0x14) == 0xffff_ffe1)
        #expect(dev.pciConfigRead(0x18) == 0xffff_f00c)
        #expect(dev.pciConfigRead(0x1c) == 0xffff_ffff)
        #expect(dev.pciConfigRead(0x20) == 0)
        #expect(dev.pciConfigRead(0x24) == 0)
        #expect(dev.pciConfigRead(0x30) == 0, "no expansion ROM")
    }

    @Test func answersThroughEveryPlacedBAR() {
        dev.placeBAR(0, at: 0xe000_0000)
        dev.placeBAR(1, at: 0xc000)
        dev.placeBAR(2, at: 0x1_0000_0000)
        #expect(dev.read(mmio: 0xe000_0000) == Self.id)
        #expect(dev.read(port: 0xc000, size: 4) == Self.id)
        #expect(dev.read(mmio: 0x1_0000_0000) == Self.id)
        #expect(dev.read(mmio: 0xe000_0010) == 0)
        #expect(dev.read(port: 0xc010, size: 4) == 1)
        #expect(dev.read(mmio: 0x1_0000_0010) == 2)
        #expect(dev.pciConfigRead(0x18) == 0x0000_000c)
        #expect(dev.pciConfigRead(0x1c) == 1)
        dev.write(port: 0xc004, 0x1234_5678, size: 4)
        #expect(dev.read(mmio: 0x1_0000_0004) == 0x1234_5678)
        dev.write(mmio: 0xe000_0004, 0xab, size: 1)
        #expect(dev.read(mmio: 0xe000_0004) == 0x1234_56ab)
        #expect(dev.read(mmio: 0xe000_0008) == 2)
    }

    @Test func movingABARMovesTheRegion() {
        dev.placeBAR(0, at: 0xe000_0000)
        dev.pciConfigWrite(0x10, 0xe010_0000)
        #expect(dev.read(mmio: 0xe010_0000) == Self.id)
        #expect(dev.read(mmio: 0xe000_0000) == 0xffff_ffff)
        dev.pciConfigWrite(0x04, 0, size: 2)
        #expect(dev.read(mmio: 0xe010_0000) == 0xffff_ffff)
        #expect(dev.host.regions.isEmpty)
    }

    @Test func capabilityListHoldsTheVendorSpecificCapability() {
        #expect(dev.pciConfigRead(0x06, size: 2) & 0x10 != 0)
        #expect(dev.pciConfigRead(0x34, size: 1) == 0x40)
        #expect(dev.pciConfigRead(0x40) == 0x5608_0009)  // ID 9, end of list, 8 bytes, 'V'
        #expect(dev.pciConfigRead(0x44) == 0x0001_524e)  // 'N' 'R' 1 0
        #expect(dev.pciConfigRead(0x4c) == 0)
        #expect(dev.pciConfigRead(0xfc) == 0)
    }

    @Test func configScratchIsAnsweredByThePlugin() throws {
        dev.pciConfigWrite(0x48, 0xdead_beef)
        #expect(dev.pciConfigRead(0x48) == 0xdead_beef)
        dev.pciConfigWrite(0x4a, 0x1234, size: 2)
        #expect(dev.pciConfigRead(0x48) == 0x1234_beef)
        #expect(dev.pciConfigRead(0x4b, size: 1) == 0x12)
        dev.pciConfigWrite(0x40, 0xffff_ffff)
        #expect(dev.pciConfigRead(0x40) == 0x5608_0009, "the capability is read-only")
        let state = try dev.save()
        try dev.reset()
        #expect(dev.pciConfigRead(0x48) == 0)
        try dev.load(state)
        #expect(dev.pciConfigRead(0x48) == 0x1234_beef)
    }

    @Test func intaFollowsTheIRQRegisterAndTheInterruptDisableBit() {
        dev.placeBAR(1, at: 0xc000)
        dev.write(port: 0xc00c, 1, size: 4)
        #expect(dev.host.irqLevels[11] == true)
        #expect(dev.read(port: 0xc014, size: 4) == 0x3, "the command register as the core reported it")
        dev.pciConfigWrite(0x05, 0x04, size: 1)  // interrupt disable (bit 10)
        #expect(dev.host.irqLevels[11] == false)
        #expect(dev.read(port: 0xc014, size: 4) == 0x403)
        dev.pciConfigWrite(0x04, 0x0001, size: 2)
        #expect(dev.host.irqLevels[11] == true)
        dev.write(port: 0xc00c, 0, size: 4)
        #expect(dev.host.irqLevels[11] == false)
    }

    @Test func aCoreResetUnmapsEverything() {
        dev.placeBAR(0, at: 0xe000_0000)
        dev.host.pci.reset()
        #expect(dev.host.regions.isEmpty)
        #expect(dev.pciConfigRead(0x10) == 0)
        #expect(dev.pciConfigRead(0x04, size: 2) == 0)
    }

    @Test func passesTheConformanceSuiteWithConfigurationAccesses() {
        let report = ConformanceSuite(plugin: "pci-testdev", accesses: 20_000).run()
        #expect(report.allPassed, "\(report.checks.map(\.line))")
        let random = report.checks.first { $0.name == "random accesses" }?.message ?? ""
        #expect(random.contains("PCI configuration accesses"), "\(random)")
    }
}
