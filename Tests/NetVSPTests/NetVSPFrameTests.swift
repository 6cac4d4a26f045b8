import Foundation
import NVSPProtocol
import RNDISProtocol
import Testing
import VeneerHarness
import VeneerHost

/// Frames both ways between a ready guest and the port, with the offloads, VLANs, port policy
/// and RSS steering.
@Suite("netvsp frames")
struct NetVSPFrameTests {
    static let peer = Frames.mac("52:54:00:00:00:09")

    static func ready(_ parameters: [String: ParameterValidation.Input] = [:], queues: Int = 1, vcpus: UInt32 = 4) throws -> (NetVSCGuest, [UInt8]) {
        let g = try NetVSCGuest(parameters: parameters, queues: queues, vcpus: vcpus)
        try g.connect()
        try g.rndisSetUp()
        let mac = try g.query(RNDISOID.permanentAddress).info
        return (g, mac)
    }

    @Test func hostToGuestWithChecksumResults() throws {
        let (g, mac) = try Self.ready()
        let udp = Frames.ipv4(src: Self.peer, dst: mac, tcp: false, payload: 100)
        g.ports[0].inject(udp, header: [2] + [UInt8](repeating: 0, count: 11))  // DATA_VALID
        let tcp = Frames.ipv4(src: Self.peer, dst: mac, tcp: true, payload: 1000, l4Checksum: "partial")
        // NEEDS_CSUM from byte 34, field at +16: the VSP finishes the sum.
        g.ports[0].inject(tcp, header: [1, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0])
        let plain = Frames.ipv4(src: Self.peer, dst: mac, tcp: false, payload: 10)
        g.ports[0].inject(plain)
        g.pump()
        let got = try g.receive(channel: g.primary)
        #expect(got.count == 3)
        guard got.count == 3 else { return }
        #expect(got.allSatisfy { $0.type == 1 })
        #expect(got[0].frame == udp)
        #expect(got[0].ppis[0] == PPIValue.ReceiveChecksum.udpSucceeded | PPIValue.ReceiveChecksum.ipSucceeded)
        #expect(Frames.checksumsValid(got[1].frame) && got[1].frame.count == tcp.count && got[1].frame[..<50] == tcp[..<50])
        #expect(got[1].ppis[0] == PPIValue.ReceiveChecksum.tcpSucceeded | PPIValue.ReceiveChecksum.ipSucceeded)
        #expect(got[2].frame == plain && got[2].ppis[0] == nil, "no claim about a sum nobody checked")
        #expect(try g.counter("rx_frames") == 3)
    }

    @Test func hostToGuestFilteringAndVLANTags() throws {
        let (g, mac) = try Self.ready()
        let other = Frames.ipv4(src: Self.peer, dst: Frames.mac("02:00:00:00:00:77"), tcp: false, payload: 20)
        g.ports[0].inject(other)
        let broadcast = Frames.ipv4(src: Self.peer, dst: [UInt8](repeating: 0xFF, count: 6), tcp: false, payload: 20)
        g.ports[0].inject(broadcast)
        let plain = Frames.ipv4(src: Self.peer, dst: mac, tcp: false, payload: 20)
        let tagged = Array(plain[0..<12]) + [0x81, 0x00, 0xA0, 0x07] + Array(plain[12...])  // priority 5, VLAN 7
        g.ports[0].inject(tagged)
        g.pump()
        let got = try g.receive(channel: g.primary)
        #expect(got.count == 2)
        guard got.count == 2 else { return }
        #expect(got[0].frame == broadcast)
        #expect(got[1].frame == plain)
        let vlan = PPIValue.VLAN(rawValue: got[1].ppis[PPIType.ieee8021Q.rawValue] ?? 0)
        #expect(vlan.id == 7 && vlan.priority == 5)
        #expect(try g.counter("rx_filtered_dropped") == 1)
    }

    @Test func nothingReachesAGuestWithoutAPacketFilter() throws {
        let g = try NetVSCGuest()
        try g.connect()
        try g.rndisSetUp(filter: 0)
        let mac = try g.query(RNDISOID.permanentAddress).info
        g.ports[0].inject(Frames.ipv4(src: Self.peer, dst: mac, tcp: false, payload: 20))
        g.pump()
        #expect(try g.receive(channel: g.primary).isEmpty)
        #expect(try g.set(RNDISOID.currentPacketFilter, bytesLE32(0x0D)) == 0)
        g.pump()
        #expect(try g.receive(channel: g.primary).count == 1, "the frame waited in the port, it was not lost")
    }

    @Test func guestToHostWithChecksumOffloadBothShapes() throws {
        let (g, mac) = try Self.ready()
        let tcp = Frames.ipv4(src: mac, dst: Self.peer, tcp: true, payload: 200, l4Checksum: "partial")
        let csum = PPIValue.TransmitChecksum(rawValue: 1 | 4 | 34 << 16)  // IPv4, TCP, header at 34
        #expect(try g.sendFrames([NetVSCGuest.packetMessage(tcp, ppis: [(.checksum, csum.rawValue)])]) == 1)
        // A page buffer that crosses a page boundary: two guest pages, one writev.
        let udp = Frames.ipv4(src: mac, dst: Self.peer, tcp: false, payload: 1400, l4Checksum: "partial")
        #expect(try g.sendFrameGPADirect(NetVSCGuest.packetMessage(udp, ppis: [(.checksum, 1 | 8)]), gpa: 0x70_0F00) == 1)
        let out = g.ports[0].frames()
        #expect(out.count == 2)
        guard out.count == 2 else { return }
        #expect(out[0].frame == tcp && out[0].header[0] == 1 && out[0].header[6] == 34 && out[0].header[8] == 16)
        #expect(out[1].frame == udp && out[1].header[0] == 1 && out[1].header[6] == 34 && out[1].header[8] == 6)
        #expect(try g.counter("tx_frames") == 2)
    }

    @Test func batchedSendsInOneSection() throws {
        let (g, mac) = try Self.ready()
        let frames = (0..<5).map { Frames.ipv4(src: mac, dst: Self.peer, tcp: false, payload: 30 + $0, srcPort: UInt16(1000 + $0)) }
        #expect(try g.sendFrames(frames.map { NetVSCGuest.packetMessage($0) }) == 1)
        #expect(g.ports[0].frames().map(\.frame) == frames)
    }

    @Test func largeSendBecomesAGSOFrame() throws {
        let (g, mac) = try Self.ready()
        let frame = Frames.ipv4(src: mac, dst: Self.peer, tcp: true, payload: 20000, l4Checksum: "lso", zeroIPLength: true)
        let lso = PPIValue.LargeSend(mss: 1460, tcpHeaderOffset: 34, ipv6: false)
        #expect(try g.sendFrameGPADirect(NetVSCGuest.packetMessage(frame, ppis: [(.largeSend, lso.rawValue)])) == 1)
        let out = g.ports[0].frames()
        #expect(out.count == 1)
        guard let sent = out.first else { return }
        let header = VirtioHeaderFields(sent.header)
        #expect(header.flags == 1 && header.gsoType == 1 && header.gsoSize == 1460 && header.headerLength == 54)
        #expect(header.checksumStart == 34 && header.checksumOffset == 16)
        // The IP length is the whole frame's again, and the TCP field holds the pseudo-header
        // sum with the length, as a GSO frame for the host kernel must.
        let expected = Frames.ipv4(src: mac, dst: Self.peer, tcp: true, payload: 20000, l4Checksum: "partial")
        #expect(sent.frame == expected)
    }

    @Test func vlanPPIsOnTrunkAndAccessPorts() throws {
        let (trunk, mac) = try Self.ready()
        let frame = Frames.ipv4(src: mac, dst: Self.peer, tcp: false, payload: 40)
        let tag = PPIValue.VLAN(id: 12, priority: 3)
        try trunk.sendFrames([NetVSCGuest.packetMessage(frame, ppis: [(.ieee8021Q, tag.rawValue)])])
        let tagged = trunk.ports[0].frames().first?.frame ?? []
        #expect(tagged == Array(frame[0..<12]) + [0x81, 0x00, 0x60, 0x0C] + Array(frame[12...]))

        let (access, mac2) = try Self.ready(["vlan": .int(5)])
        let own = Frames.ipv4(src: mac2, dst: Self.peer, tcp: false, payload: 40)
        try access.sendFrames([NetVSCGuest.packetMessage(own, ppis: [(.ieee8021Q, PPIValue.VLAN(id: 5, priority: 0).rawValue)])])
        try access.sendFrames([NetVSCGuest.packetMessage(own, ppis: [(.ieee8021Q, PPIValue.VLAN(id: 6, priority: 0).rawValue)])])
        #expect(access.ports[0].frames().map(\.frame) == [own], "its own VLAN goes out untagged (the switch tags it); another is dropped")
        #expect(try access.counter("tx_vlan_dropped") == 1)
    }

    @Test func spoofedSourcesAreDroppedAndCounted() throws {
        let (g, mac) = try Self.ready()
        let spoofed = Frames.ipv4(src: Frames.mac("02:66:66:66:66:66"), dst: Self.peer, tcp: false, payload: 40)
        let own = Frames.ipv4(src: mac, dst: Self.peer, tcp: false, payload: 40)
        try g.sendFrames([NetVSCGuest.packetMessage(spoofed), NetVSCGuest.packetMessage(own)])
        #expect(g.ports[0].frames().map(\.frame) == [own])
        #expect(try g.counter("tx_spoofed_dropped") == 1)

        let (allowed, _) = try Self.ready(["allow_mac_spoofing": .bool(true)])
        try allowed.sendFrames([NetVSCGuest.packetMessage(spoofed)])
        #expect(allowed.ports[0].frames().map(\.frame) == [spoofed])
    }

    @Test func bandwidthCapFollowsTheHostClock() throws {
        // 1 Mbit/s: a burst of 144,288 bits (two jumbo frames) holds eleven 1514-byte frames.
        let (g, mac) = try Self.ready(["bandwidth": .int(1_000_000)])
        let frame = Frames.ipv4(src: mac, dst: Self.peer, tcp: false, payload: 1472)
        #expect(frame.count == 1514)
        for _ in 0..<20 { try g.sendFrameGPADirect(NetVSCGuest.packetMessage(frame)) }
        #expect(g.ports[0].frames().count == 11)
        #expect(try g.counter("tx_rate_limited_dropped") == 9)
        // 12,112 bits later one more frame fits, and no second one.
        g.h.advance(nanoseconds: 12_112_000)
        for _ in 0..<2 { try g.sendFrameGPADirect(NetVSCGuest.packetMessage(frame)) }
        #expect(g.ports[0].frames().count == 1)
        // A second refills the bucket, but only to its burst.
        g.h.advance(nanoseconds: 1_000_000_000)
        for _ in 0..<20 { try g.sendFrameGPADirect(NetVSCGuest.packetMessage(frame)) }
        #expect(g.ports[0].frames().count == 11)
    }

    @Test func rssIndirectionTableSteersHostFrames() throws {
        let (g, mac) = try Self.ready(vcpus: 4)
        #expect(try g.openSubchannels(3) == 3)
        // Microsoft's RSS verification key and its first TCP/IPv4 vector: 66.9.149.187:2794 ->
        // 161.142.100.80:1766 hashes to 0x51ccc178; entry 0x78 of the table names queue 3.
        let key: [UInt8] = [0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
                            0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
                            0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa]
        var table = [UInt32](repeating: 1, count: 128)
        table[0x78] = 3
        let params = NDISReceiveScaleParameters(flags: 0, hashInformation: 0x1701, table: table, key: key)
        #expect(try g.set(RNDISOID.receiveScaleParameters, params.encoded()) == 0)
        let steered = Frames.ipv4(src: Self.peer, dst: mac, tcp: true, payload: 10, srcPort: 2794, dstPort: 1766,
                                  srcIP: [66, 9, 149, 187], dstIP: [161, 142, 100, 80])
        let other = Frames.ipv4(src: Self.peer, dst: mac, tcp: true, payload: 10, srcPort: 2795, dstPort: 1766,
                                srcIP: [66, 9, 149, 187], dstIP: [161, 142, 100, 80])
        g.ports[0].inject(steered)
        g.ports[0].inject(other)
        g.pump()
        let onThree = try g.receive(channel: g.subchannels[2])
        #expect(onThree.count == 1 && onThree.first?.frame == steered)
        #expect(onThree.first?.ppis[PPIType.hashValue.rawValue] == 0x51cc_c178)
        let onOne = try g.receive(channel: g.subchannels[0])
        #expect(onOne.count == 1 && onOne.first?.frame == other)
        #expect(try g.receive(channel: g.primary).isEmpty)
        // Frames the guest sends on a sub-channel reach the port like any other.
        try g.sendFrames([NetVSCGuest.packetMessage(Frames.ipv4(src: mac, dst: Self.peer, tcp: false, payload: 8))], channel: g.subchannels[1])
        #expect(g.ports[0].frames().count == 1)
        // Disabling RSS sends everything to the queue it came in on.
        let off = NDISReceiveScaleParameters(flags: NDISReceiveScaleParameters.flagDisable, hashInformation: 0, table: [], key: [])
        #expect(try g.set(RNDISOID.receiveScaleParameters, off.encoded()) == 0)
        g.ports[0].inject(steered)
        g.pump()
        #expect(try g.receive(channel: g.primary).count == 1)
    }

    @Test func framesWaitInThePortWhileTheGuestHoldsEverySection() throws {
        let (g, mac) = try Self.ready(["mtu": .int(9000)])
        #expect(g.sectionCount > 0 && g.sectionCount < 200)
        let frame = Frames.ipv4(src: Self.peer, dst: mac, tcp: false, payload: 10)
        let total = g.sectionCount + 6
        for _ in 0..<total { g.ports[0].inject(frame) }
        g.pump()
        let first = try g.receive(channel: g.primary, complete: false)
        #expect(first.count == g.sectionCount)
        // Completing them hands the sections back; the rest follow.
        for packet in g.h.host.packetsFromDevice(channel: g.primary) where packet.type == 7 {
            g.h.send([FakeHost.Packet(type: 11, transactionID: packet.transactionID,
                                      payload: NVSPMessage.rndisPacketComplete(status: 1).encoded(size: g.messageSize))], channel: g.primary)
        }
        g.pump()
        #expect(try g.receive(channel: g.primary).count == 6)
        #expect(try g.counter("rx_ring_full_dropped") == 0)
    }
}

/// The fields of a virtio_net_hdr_v1 a test reads back.
struct VirtioHeaderFields {
    var flags: UInt8, gsoType: UInt8, headerLength: Int, gsoSize: Int, checksumStart: Int, checksumOffset: Int
    init(_ b: [UInt8]) {
        flags = b[0]
        gsoType = b[1]
        headerLength = Int(b[2]) | Int(b[3]) << 8
        gsoSize = Int(b[4]) | Int(b[5]) << 8
        checksumStart = Int(b[6]) | Int(b[7]) << 8
        checksumOffset = Int(b[8]) | Int(b[9]) << 8
    }
}

/// Completions a guest invents, repeats or sends for a packet still owned free nothing.
@Suite("netvsp completions")
struct NetVSPCompletionTests {
    @Test func forgedAndRepeatedCompletionsFreeNothing() throws {
        let (g, mac) = try NetVSPFrameTests.ready(["mtu": .int(9000)])
        let frame = Frames.ipv4(src: NetVSPFrameTests.peer, dst: mac, tcp: false, payload: 10)
        g.ports[0].inject(frame)
        g.pump()
        let packets = g.newPackets(g.primary).filter { $0.type == 7 }
        #expect(packets.count == 1)
        guard let packet = packets.first else { return }
        let complete = { (id: UInt64) in
            g.h.send([FakeHost.Packet(type: 11, transactionID: id,
                                      payload: NVSPMessage.rndisPacketComplete(status: 1).encoded(size: g.messageSize))], channel: g.primary)
        }
        complete(packet.transactionID ^ (1 << 40))  // wrong generation
        complete(packet.transactionID &+ 1)         // a section that is not a packet's first
        complete(0xFFFF_FFFF)                       // out of range
        #expect(try g.counter("guest_bad_completion") == 3)
        complete(packet.transactionID)
        complete(packet.transactionID)              // again
        #expect(try g.counter("guest_bad_completion") == 4)
        // Every section is usable once: fill them all, nothing is handed out twice.
        for _ in 0..<g.sectionCount { g.ports[0].inject(frame) }
        g.pump()
        let offsets = try g.receive(channel: g.primary, complete: false).count
        #expect(offsets == g.sectionCount)
    }
}
