import Testing
import VMBusProtocol
import VeneerHarness
import VeneerPluginKit
@testable import VeneerHost

// The Swift SDK's ABI 1.7 calls (VeneerPluginKit's HostServices) through the real host table into
// the harness's fake VMBus: the test is the plugin, on the channel a loaded VSP offered, and the
// harness is the guest.

@Suite struct SDKVSPChannelTests {
    /// A harness whose device offered channel 1, opened by the guest, and the SDK's view of the
    /// same host (packets are queued without signals, so the device never reads them).
    private func setUp() throws -> (PluginHarness, HostServices, HostBinding) {
        let h = try PluginHarness(plugin: "vmbus-echo")
        h.openChannel(1)
        let binding = HostBinding(host: h.host)
        return (h, HostServices(api: HostServiceTable.api, host: binding.opaque), binding)
    }

    @Test func readsGPADirectPacketsAsSegmentsAndOthersWithTheirHeader() throws {
        let (h, sdk, binding) = try setUp()
        defer { withExtendedLifetime(binding) {} }
        #expect(sdk.hasVSPChannels)
        #expect(try sdk.readSegmentedPacket(channel: 1) == nil)
        let big = [UInt8](repeating: 0x5C, count: 6000)   // past the SDK's first 4096-byte try
        h.queue([PluginHarness.gpaDirectPacket(transactionID: 4, ranges: [PluginHarness.guestRange(gpa: 0x10_0ff0, length: 0x20)],
                                               payload: big),
                 FakeHost.Packet(type: 11, transactionID: 5, header: [1, 2, 3, 4, 5, 6, 7, 8], payload: [9])], channel: 1)
        let gpa = try #require(try sdk.readSegmentedPacket(channel: 1))
        #expect(gpa == SegmentedPacket(type: 9, flags: 1, transactionID: 4, header: [], payload: big,
                                       segments: [GuestSegment(gpa: 0x10_0ff0, length: 0x20)]), "two adjacent pages, one segment")
        #expect(gpa.completionRequested)
        let other = try #require(try sdk.readSegmentedPacket(channel: 1))
        #expect(other == SegmentedPacket(type: 11, flags: 0, transactionID: 5, header: [1, 2, 3, 4, 5, 6, 7, 8], payload: [9], segments: []))
        #expect(try sdk.readSegmentedPacket(channel: 1) == nil)
        #expect(throws: HostServices.ChannelReadError.self) { try sdk.readSegmentedPacket(channel: 99) }

        // 200 ranges on alternate pages: 200 segments, all handed over.
        let scattered = (0..<200).map { PluginHarness.guestRange(gpa: 0x20_0000 + UInt64($0) * 0x2000, length: 0x1000) }
        h.queue([PluginHarness.gpaDirectPacket(transactionID: 6, ranges: scattered, payload: [])], channel: 1)
        let many = try #require(try sdk.readSegmentedPacket(channel: 1))
        #expect(many.segments.count == 200 && many.segments.last == GuestSegment(gpa: 0x20_0000 + 199 * 0x2000, length: 0x1000))
    }

    @Test func subchannelsRescindsAndGPADLs() throws {
        let (h, sdk, binding) = try setUp()
        defer { withExtendedLifetime(binding) {} }
        #expect(try sdk.offerSubchannels(primary: 1, count: 0) == [])
        #expect(throws: PluginError.self) { try sdk.offerSubchannels(primary: 1, count: 65) }
        let subs = try sdk.offerSubchannels(primary: 1, count: 2)
        #expect(h.host.subchannels(of: 1).map(\.channel) == subs)
        #expect(throws: PluginError.self) { try sdk.offerSubchannels(primary: subs[0], count: 1) }
        #expect(throws: PluginError.self) { try sdk.rescindChannel(subs[0]) }

        #expect(h.defineGPADL(3, channel: 1, ranges: [GPARange(byteCount: 0x2000, byteOffset: 0, pfns: [0x300, 0x302])]))
        let expected = [GuestSegment(gpa: 0x30_0000, length: 0x1000), GuestSegment(gpa: 0x30_2000, length: 0x1000)]
        #expect(try sdk.gpadlSegments(channel: 1, gpadl: 3) == expected)
        #expect(try sdk.gpadlSegments(channel: subs[1], gpadl: 3) == expected)
        #expect(throws: PluginError.self) { try sdk.gpadlSegments(channel: 1, gpadl: 4) }

        try sdk.rescindChannel(1)
        #expect(h.host.offers.isEmpty)
        #expect(throws: PluginError.self) { try sdk.rescindChannel(1) }
    }

    @Test func writesBatchesAndReportsAFullRing() throws {
        let (h, sdk, binding) = try setUp()
        defer { withExtendedLifetime(binding) {} }
        let packets = (0..<5).map { OutgoingPacket(type: 11, transactionID: UInt64($0), payload: [UInt8($0), 1, 2]) }
            + [OutgoingPacket(type: 7, transactionID: 9, header: [UInt8](repeating: 4, count: 16), payload: [])]
        let result = sdk.writePackets(channel: 1, packets)
        #expect(result.written == 6 && result.outcome == .written)
        let sent = h.host.packetsFromDevice(channel: 1)
        #expect(sent.map(\.transactionID) == [0, 1, 2, 3, 4, 9])
        #expect(sent.map(\.payload) == packets.map(\.payload) && sent.last?.header == [UInt8](repeating: 4, count: 16))
        #expect(h.host.guestSignals(channel: 1) == 1)
        #expect(OutgoingPacket(transactionID: 1, payload: []).type == 6)

        h.limitRoom(2, channel: 1)
        let partial = sdk.writePackets(channel: 1, packets)
        #expect(partial.written == 2 && partial.outcome == .full)
        let malformed = sdk.writePackets(channel: 1, [OutgoingPacket(type: 7, transactionID: 1, header: [1, 2, 3], payload: [])])
        #expect(malformed.written == 0 && malformed.outcome == .failed("invalid argument"))
        let none = sdk.writePackets(channel: 1, [])
        #expect(none.written == 0 && none.outcome == .written)
    }

    @Test func mapsGuestRAMOnly() throws {
        let (h, sdk, binding) = try setUp()
        defer { withExtendedLifetime(binding) {} }
        let mapped = try #require(sdk.mapGuest(0x10_0000, length: 0x2000, writable: true))
        #expect(mapped.count == 0x2000)
        mapped[0x1FFF] = 0x42
        #expect(try h.readGuest(0x10_1FFF, count: 1) == [0x42])
        #expect(sdk.mapGuest(0xFFFF_0000, length: 0x1000, writable: false) == nil)
        #expect(sdk.mapGuest(0x10_0000, length: 0, writable: false) == nil)
    }
}
