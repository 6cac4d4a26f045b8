import Foundation
import Testing
import VeneerHarness
import VeneerHost

/// The echo VSP through the harness's fake VMBus (the test plays the guest).
@Suite("vmbus-echo")
struct VMBusEchoTests {
    static let echoType: [UInt8] = [0x56, 0x4b, 0xcf, 0xe6, 0xfc, 0x4c, 0x3c, 0x4b, 0x9b, 0x5d, 0x5e, 0x2f, 0x0e, 0x6a, 0x3b, 0x21]

    @Test func offersOneChannelWithItsGUIDsInWireOrder() throws {
        let h = try PluginHarness(plugin: "vmbus-echo", parameters: ["instance": .string("00112233-4455-6677-8899-aabbccddeeff")])
        #expect(h.library.info.kind == .synthetic)
        let offers = h.host.offers
        #expect(offers.count == 1)
        #expect(offers[1]?.interfaceType == Self.echoType)
        #expect(offers[1]?.interfaceInstance == [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
    }

    @Test func echoesInBandPacketsInOrderAndIgnoresOthers() throws {
        let h = try PluginHarness(plugin: "vmbus-echo")
        h.openChannel(1)
        let packets = (0..<50).map { FakeHost.Packet(transactionID: UInt64($0), payload: [UInt8](repeating: UInt8($0), count: 8 * ($0 % 7 + 1))) }
        h.send(packets + [FakeHost.Packet(type: 11, transactionID: 99, payload: [1])], channel: 1)
        let echoed = h.host.packetsFromDevice(channel: 1)
        #expect(echoed.map(\.transactionID) == (0..<50).map(UInt64.init))
        #expect(echoed.map(\.payload) == packets.map(\.payload))
        #expect(echoed.allSatisfy { $0.type == 6 })
    }

    @Test func aFullRingHoldsThePacketUntilTheGuestMakesRoom() throws {
        let h = try PluginHarness(plugin: "vmbus-echo")
        h.openChannel(1)
        h.limitRoom(2, channel: 1)
        h.send((0..<5).map { FakeHost.Packet(transactionID: UInt64($0), payload: [UInt8($0)]) }, channel: 1)
        #expect(h.host.packetsFromDevice(channel: 1).count == 2)
        let held = try h.save()
        h.limitRoom(nil, channel: 1)
        #expect(h.host.packetsFromDevice(channel: 1).map(\.transactionID) == [0, 1, 2, 3, 4], "nothing lost, nothing reordered")
        #expect(held != (try h.save()))
    }

    @Test func nothingIsReadWhileClosed() throws {
        let h = try PluginHarness(plugin: "vmbus-echo")
        h.send([FakeHost.Packet(transactionID: 1, payload: [1])], channel: 1)
        #expect(h.host.packetsFromDevice(channel: 1).isEmpty)
    }

    @Test func doorbellRegistersAnInKernelEventFD() throws {
        let h = try PluginHarness(plugin: "vmbus-echo", parameters: ["doorbell_port": .int(0x5f0)])
        let bell = try #require(h.host.doorbells.first)
        #expect(bell == FakeHost.Doorbell(mmio: false, address: 0x5f0, length: 4, fd: bell.fd))
        #expect(h.host.watchedFDs == [bell.fd])
        var one: UInt64 = 3
        #expect(write(bell.fd, &one, 8) == 8)
        #expect(h.pollFDs() == 1)
        let state = try h.save()
        #expect(state[8..<16].elementsEqual([3, 0, 0, 0, 0, 0, 0, 0]), "doorbell rings counted")
    }

    @Test func stateRoundTripsAndGarbageIsRefused() throws {
        let h = try PluginHarness(plugin: "vmbus-echo")
        h.openChannel(1)
        h.send([FakeHost.Packet(transactionID: 7, payload: [7, 7])], channel: 1)
        let saved = try h.save()
        try h.load(saved)
        #expect(try h.save() == saved)
        #expect(throws: (any Error).self) { try h.load(Array(saved.dropLast())) }
        #expect(throws: (any Error).self) { try h.load(saved, version: 2) }
    }
}
