import Synchronization
import Testing
import VeneerHarness
import VeneerHost

/// The exit-path buses while their regions move under them, as BAR writes move them while
/// other vCPUs run. The device behind them is the real pci-testdev (its ID register reads
/// 0x49435056 through any region); the harness only provides it.
@Suite struct ExitBusTests {
    static let id: UInt64 = 0x4943_5056

    final class Counters: Sendable {
        let good = Atomic<Int>(0)
        let bad = Atomic<Int>(0)
        let moves = Atomic<Int>(0)
        let done = Atomic<Bool>(false)
    }

    @Test func portAndMMIOLookupsStayCoherentWhileRegionsMove() throws {
        let dev = try PluginHarness(plugin: "pci-testdev")
        let device = dev.device
        let ports = PortIOBus(), mmio = MMIOBus()
        let counters = Counters()
        #expect(ports.register(device: device, region: 1, port: 0xc000, length: 32) == .ok)
        #expect(mmio.register(device: device, region: 0, address: 0xe000_0000, length: 0x1000) == .ok)

        let mover = try NativeThread(name: "mover") {
            var atA = true
            for _ in 0..<20_000 {
                _ = ports.unregister(device: device, region: 1)
                _ = mmio.unregister(device: device, region: 0)
                atA.toggle()
                _ = ports.register(device: device, region: 1, port: atA ? 0xc000 : 0xc100, length: 32)
                _ = mmio.register(device: device, region: 0, address: atA ? 0xe000_0000 : 0xe010_0000, length: 0x1000)
                counters.moves.add(1, ordering: .relaxed)
            }
            counters.done.store(true, ordering: .releasing)
        }
        let readers = try (0..<2).map { index in
            try NativeThread(name: "reader\(index)") {
                while !counters.done.load(ordering: .acquiring) {
                    for (port, address) in [(UInt16(0xc000), UInt64(0xe000_0000)), (0xc100, 0xe010_0000)] {
                        var data: UInt64 = 0
                        ports.dispatch(port: port, size: 4, isWrite: false, data: &data)
                        let portOK = data == Self.id || data == 0xffff_ffff
                        data = 0
                        mmio.dispatch(address: address, size: 4, isWrite: false, data: &data)
                        let mmioOK = data == Self.id || data == 0xffff_ffff
                        if portOK && mmioOK {
                            counters.good.add(1, ordering: .relaxed)
                        } else {
                            counters.bad.add(1, ordering: .relaxed)
                        }
                    }
                }
            }
        }
        mover.join()
        readers.forEach { $0.join() }
        #expect(counters.bad.load(ordering: .relaxed) == 0)
        #expect(counters.good.load(ordering: .relaxed) > 0)
        #expect(counters.moves.load(ordering: .relaxed) == 20_000)
        // The tables are consistent afterwards: exactly one place answers.
        #expect((ports.owner(of: 0xc000) == nil) != (ports.owner(of: 0xc100) == nil))
        #expect((mmio.owner(of: 0xe000_0000) == nil) != (mmio.owner(of: 0xe010_0000) == nil))
    }

    @Test func registeringAndUnregisteringInALoopKeepsTheTableConsistent() throws {
        let dev = try PluginHarness(plugin: "pci-testdev")
        let ports = PortIOBus()
        for i in 0..<1_000 {
            #expect(ports.register(device: dev.device, region: 7, port: UInt16(0x1000 + (i % 16) * 0x20), length: 0x20) == .ok)
            #expect(ports.register(device: dev.device, region: 8, port: 0x3000, length: 4) == (i == 0 ? .ok : .busy))
            #expect(ports.unregister(device: dev.device, region: 7))
        }
        #expect(ports.owner(of: 0x1000) == nil)
        #expect(ports.owner(of: 0x3000)?.region == 8)
        #expect(ports.register(device: dev.device, region: 9, port: 0x3002, length: 4) == .busy)
        #expect(ports.isFree(port: 0x3004, count: 4) && !ports.isFree(port: 0x2fff, count: 2))
    }
}
