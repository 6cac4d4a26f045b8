import Testing
import VeneerHarness
import VeneerHost

// pci-host through its real .so: configuration mechanism #1 as the PCI Local Bus specification
// (3.0, section 3.2.2.3.2) describes it, in front of the harness's PCI bus, which pci-testdev
// harnesses share so there is something to find.
private let configAddress: UInt16 = 0xcf8
private let configData: UInt16 = 0xcfc

/// CONFIG_ADDRESS for bus/device/function/register, enabled.
private func address(bus: UInt64 = 0, device: UInt64, function: UInt64 = 0, register: UInt64) -> UInt64 {
    0x8000_0000 | bus << 16 | device << 11 | function << 8 | register
}

extension PluginHarness {
    fileprivate func select(_ value: UInt64) { write(port: configAddress, value, size: 4) }

    fileprivate func config(device: UInt64, register: UInt64, lane: UInt16 = 0, size: Int = 4) -> UInt64 {
        select(address(device: device, register: register))
        return read(port: configData + lane, size: size)
    }

    fileprivate func config(device: UInt64, register: UInt64, lane: UInt16 = 0, size: Int = 4, write value: UInt64) {
        select(address(device: device, register: register))
        write(port: configData + lane, value, size: size)
    }
}

@Suite struct PCIHostTests {
    let bus = PCIBus()
    let host: PluginHarness

    init() throws {
        host = try PluginHarness(plugin: "pci-host", pciBus: bus)
    }

    func testdev(_ parameters: [String: ParameterInput] = [:]) throws -> PluginHarness {
        try PluginHarness(plugin: "pci-testdev", parameters: parameters, pciBus: bus)
    }

    @Test func claimsBothRegistersOfMechanismOne() {
        #expect(host.host.regions.map(\.base) == [0xcf8, 0xcfc])
        #expect(host.host.regions.map(\.length) == [4, 4])
        #expect(host.library.info.parameters.isEmpty)
    }

    @Test func theHostBridgeIsAn440BXAt0000() {
        #expect(host.config(device: 0, register: 0x00) == 0x7192_8086)
        #expect(host.config(device: 0, register: 0x08) == 0x0600_0003, "class 060000 (host bridge), revision 3")
        #expect(host.config(device: 0, register: 0x0c) == 0, "header type 0, single function")
        #expect(host.config(device: 0, register: 0x04, size: 2) == 0x0006, "memory and bus master enabled")
        #expect(host.config(device: 0, register: 0x10) == 0, "no BARs")
    }

    @Test func configAddressKeepsOnlyItsDefinedBits() {
        host.select(0xffff_ffff)
        #expect(host.read(port: configAddress, size: 4) == 0x80ff_fffc, "bits 30-24 and 1-0 are reserved")
        host.select(0x8000_0000)
        #expect(host.read(port: configAddress, size: 4) == 0x8000_0000, "the probe Linux's pci_check_type1 makes")
    }

    @Test func narrowAccessesToConfigAddressAreNotTheRegister() {
        host.select(0x8000_0800)
        host.write(port: configAddress + 3, 0x01)  // Linux's mechanism #2 probe writes 0xcfb
        host.write(port: configAddress, 0x00)
        host.write(port: configAddress, 0x0000, size: 2)
        #expect(host.read(port: configAddress, size: 4) == 0x8000_0800)
        #expect(host.read(port: configAddress) == 0xff)
        #expect(host.read(port: configAddress + 2, size: 2) == 0xffff)
    }

    @Test func wordAndByteLanesOfConfigData() {
        #expect(host.config(device: 0, register: 0, lane: 0, size: 2) == 0x8086)
        #expect(host.config(device: 0, register: 0, lane: 2, size: 2) == 0x7192)
        #expect(host.config(device: 0, register: 0, lane: 0, size: 1) == 0x86)
        #expect(host.config(device: 0, register: 0, lane: 1, size: 1) == 0x80)
        #expect(host.config(device: 0, register: 0, lane: 2, size: 1) == 0x92)
        #expect(host.config(device: 0, register: 0, lane: 3, size: 1) == 0x71)
        #expect(host.config(device: 0, register: 0x08, lane: 3, size: 1) == 0x06, "base class")
    }

    @Test func unalignedAccessesAreSplitAndStopAtTheWindow() {
        #expect(host.config(device: 0, register: 0, lane: 1, size: 2) == 0x9280, "bytes 1 and 2")
        #expect(host.config(device: 0, register: 0, lane: 3, size: 2) == 0xff71, "byte 3, then 0xd00: not ours")
        #expect(host.config(device: 0, register: 0, lane: 1, size: 4) == 0xff71_9280)
    }

    @Test func writesReachTheirLanes() throws {
        let dev = try testdev()
        host.config(device: 1, register: 0x3c, lane: 0, size: 1, write: 0x05)  // interrupt line
        #expect(dev.pciConfigRead(0x3c) == 0x0000_0105, "pin 1 untouched")
        host.config(device: 1, register: 0x48, lane: 2, size: 2, write: 0xbeef)
        host.config(device: 1, register: 0x48, lane: 1, size: 1, write: 0x12)
        #expect(dev.pciConfigRead(0x48) == 0xbeef_1200)
        #expect(host.config(device: 1, register: 0x48) == 0xbeef_1200)
    }

    @Test func theEnableBitGatesConfigData() throws {
        let dev = try testdev()
        host.select(address(device: 1, register: 0x48) & 0x7fff_ffff)
        host.write(port: configData, 0x1234_5678, size: 4)
        #expect(host.read(port: configData, size: 4) == 0xffff_ffff)
        #expect(host.read(port: configData + 2, size: 2) == 0xffff)
        #expect(dev.pciConfigRead(0x48) == 0, "the write went nowhere")
    }

    @Test func absentFunctionsReadAllOnes() throws {
        let dev = try testdev()
        #expect(host.config(device: 1, register: 0) == 0x7e57_fffe)
        #expect(host.config(device: 2, register: 0) == 0xffff_ffff)
        #expect(host.config(device: 31, register: 0x3c, lane: 1, size: 1) == 0xff)
        host.select(address(device: 1, function: 1, register: 0))
        #expect(host.read(port: configData, size: 4) == 0xffff_ffff, "functions 1-7 do not exist")
        host.select(address(bus: 1, device: 0, register: 0))
        #expect(host.read(port: configData, size: 4) == 0xffff_ffff, "there is only bus 0")
        host.select(address(bus: 0xff, device: 1, register: 0))
        #expect(host.read(port: configData, size: 4) == 0xffff_ffff)
        // Last: a harness takes its functions off the bus when it goes, and ARC may end a
        // lifetime after its last use.
        #expect(dev.pciFunction == 1 << 3)
    }

    @Test func aScanFindsTheFunctionsInSlotOrder() throws {
        let fixed = try testdev(["slot": .int(9), "device_id": .int(0x0009)])
        let auto = try testdev()
        var found: [UInt64: UInt64] = [:]
        for device: UInt64 in 0..<32 {
            let ids = host.config(device: device, register: 0)
            if ids != 0xffff_ffff { found[device] = ids }
        }
        #expect(found == [0: 0x7192_8086, 1: 0x7e57_fffe, 9: 0x0009_fffe])
        #expect(fixed.pciFunction == 9 << 3 && auto.pciFunction == 1 << 3)
    }

    @Test func barsMoveThroughMechanismOne() throws {
        let dev = try testdev()
        host.config(device: 1, register: 0x10, write: 0xffff_ffff)
        #expect(host.config(device: 1, register: 0x10) == 0xffff_f000)
        host.config(device: 1, register: 0x10, write: 0xe000_0000)
        host.config(device: 1, register: 0x04, size: 2, write: 0x0002)
        #expect(dev.read(mmio: 0xe000_0000) == 0x4943_5056)
        host.config(device: 1, register: 0x10, lane: 2, size: 2, write: 0xe010)  // a word write moves it
        #expect(dev.read(mmio: 0xe010_0000) == 0x4943_5056)
        #expect(dev.read(mmio: 0xe000_0000) == 0xffff_ffff)
        #expect(dev.host.regions.map(\.base) == [0xe010_0000])
    }

    @Test func stateIsTheAddressRegister() throws {
        host.select(address(device: 3, register: 0x10))
        let state = try host.save()
        #expect(state == [0x10, 0x18, 0x00, 0x80])
        try host.reset()
        #expect(host.read(port: configAddress, size: 4) == 0)
        try host.load(state)
        #expect(host.read(port: configAddress, size: 4) == 0x8000_1810)
        #expect(throws: PluginDeviceError.self) { try host.load([0x11, 0x18, 0x00, 0x80]) }
        #expect(throws: PluginDeviceError.self) { try host.load([0x10, 0x18, 0x00, 0xc0]) }
    }

    @Test func passesTheConformanceSuite() {
        let report = ConformanceSuite(plugin: "pci-host", accesses: 5_000).run()
        #expect(report.allPassed, "\(report.checks.map(\.line))")
    }
}
