import Foundation
import NVSPProtocol
import RNDISProtocol
import Testing
import VeneerHarness

/// Seeded fuzz of the NVSP and RNDIS parsers, and of the plugin's packet handling through the
/// harness: nothing may crash, hang or read outside its input. `VENEER_FUZZ_ITERATIONS` (default
/// 1,000,000 parser inputs; the plugin run takes a hundredth) and `VENEER_FUZZ_SEED` pick the run.
@Suite("netvsp fuzz")
struct NetVSPFuzzTests {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static var iterations: Int { Int(ProcessInfo.processInfo.environment["VENEER_FUZZ_ITERATIONS"] ?? "") ?? 1_000_000 }
    static var seed: UInt64 { UInt64(ProcessInfo.processInfo.environment["VENEER_FUZZ_SEED"] ?? "") ?? 0x5EED_0E7 }

    static let templates: [[UInt8]] = [
        NVSPMessage.initialize(minimum: 0x0006_0001, maximum: 0x0006_0001).encoded(),
        NVSPMessage.ndisConfig(mtu: 1514, capabilities: 0xFF).encoded(),
        NVSPMessage.sendReceiveBuffer(gpadl: 0xE1, id: 0xCAFE).encoded(),
        NVSPMessage.rndisPacket(channelType: 0, sectionIndex: 1, sectionSize: 100).encoded(),
        NVSPMessage.subchannel(operation: 1, count: 3).encoded(),
        RNDISRequest.initialize(requestID: 1, major: 1, minor: 0, maxTransferSize: 0x4000).encoded(),
        RNDISRequest.query(requestID: 2, oid: RNDISOID.offloadHardwareCapabilities, information: [0xA7, 3, 156, 0]).encoded(),
        RNDISRequest.set(requestID: 3, oid: RNDISOID.receiveScaleParameters,
                         information: NDISReceiveScaleParameters(flags: 0, hashInformation: 0x1701, table: [UInt32](repeating: 1, count: 128),
                                                                 key: [UInt8](repeating: 9, count: 40)).encoded()).encoded(),
        NetVSCGuest.packetMessage([UInt8](repeating: 0xAB, count: 60), ppis: [(.checksum, 0x0022_0005), (.ieee8021Q, 0x70), (.largeSend, 0x4022_05B4)]),
    ]

    static func mutate(_ template: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        var b = template
        switch rng.next() % 4 {
        case 0: return (0..<Int(rng.next() % 96)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        case 1: if !b.isEmpty { b.removeLast(Int(rng.next() % UInt64(b.count))) }
        default: break
        }
        for _ in 0..<(1 + rng.next() % 6) where !b.isEmpty {
            let at = Int(rng.next() % UInt64(b.count))
            // Bytes that make interesting integers: 0, 0xFF, small, random.
            b[at] = [0, 0xFF, UInt8(rng.next() % 8), UInt8(truncatingIfNeeded: rng.next())][Int(rng.next() % 4)]
        }
        return b
    }

    @Test func parsersTakeAMillionHostileInputs() throws {
        var rng = SplitMix(state: Self.seed)
        var decoded = 0
        for _ in 0..<Self.iterations {
            let bytes = Self.mutate(Self.templates[Int(rng.next() % UInt64(Self.templates.count))], &rng)
            if case .unknown = NVSPMessage(bytes) {} else { decoded += 1 }
            if let request = try? RNDISRequest.decode(bytes) {
                decoded += 1
                switch request {
                case .query(_, _, let info), .set(_, _, let info):
                    #expect(info.count <= bytes.count)
                    _ = try? NDISReceiveScaleParameters.decode(info)
                    _ = NDISOffloadParameters(info)
                default: break
                }
            }
            if let packet = RNDISPacketHeader(bytes, at: 8) {
                let offset = 8 + Int(packet.ppiOffset), length = Int(packet.ppiLength)
                _ = PPIEntry.walk(bytes, offset: offset, length: length) { _ in }
            }
            _ = TransferPageHeader.decode(bytes)
            _ = try? NDISReceiveScaleParameters.decode(bytes)
        }
        #expect(decoded > 0, "some mutations stay valid, so the parsers' success paths ran too")
    }

    /// Random and mutated packets into a ready NIC (both channel types, sections, GPA-direct
    /// ranges anywhere): the plugin never crashes, answers every packet that asked, and every
    /// frame it lets out is a whole frame with a sane header.
    @Test func hostilePacketsThroughThePlugin() throws {
        let count = max(1000, Self.iterations / 100)
        var rng = SplitMix(state: Self.seed ^ 0xF00D)
        let g = try NetVSCGuest(parameters: ["allow_mac_spoofing": .bool(true)])
        try g.connect()
        try g.rndisSetUp()
        var asked = 0, answered = 0
        for i in 0..<count {
            let message = Self.mutate(Self.templates[Int(rng.next() % UInt64(Self.templates.count))], &rng)
            let tid = UInt64(0x10_0000 + i)
            switch rng.next() % 3 {
            case 0:
                try g.h.writeGuest(Array(message.prefix(6144)), at: NetVSCGuest.sendGPA + 6144)
                let section = rng.next() % 8 == 0 ? UInt32(truncatingIfNeeded: rng.next()) : 1
                let size = rng.next() % 8 == 0 ? UInt32(truncatingIfNeeded: rng.next()) : UInt32(message.count)
                var nvsp = NVSPMessage.rndisPacket(channelType: UInt32(rng.next() % 3), sectionIndex: section, sectionSize: size).encoded()
                if rng.next() % 4 == 0 { nvsp = Self.mutate(nvsp, &rng) }
                if case .rndisPacket = NVSPMessage(nvsp) { asked += 1 }
                g.h.send([FakeHost.Packet(flags: 1, transactionID: tid, payload: nvsp)], channel: g.primary)
            case 1:
                // Ranges anywhere in guest RAM (the VMM refuses others before the plugin sees them).
                let length = rng.next() % 8 == 0 ? Int(rng.next() % 70000) + 1 : max(1, message.count)
                let gpa = rng.next() % 4 == 0 ? rng.next() % UInt64((32 << 20) - length) : 0x70_0000 + (rng.next() % 0x1000)
                try g.h.writeGuest(Array(message.prefix(length)), at: gpa)
                let nvsp = NVSPMessage.rndisPacket(channelType: UInt32(rng.next() % 2), sectionIndex: 0xFFFF_FFFF, sectionSize: 0).encoded()
                g.h.send([PluginHarness.gpaDirectPacket(transactionID: tid, ranges: [PluginHarness.guestRange(gpa: gpa, length: length)],
                                                        payload: nvsp)], channel: g.primary)
                asked += 1
            default:
                // Anything at all in-band or as a completion (random ids); a malformed GPA-direct or
                // transfer-page packet breaks the ring in the VMM before the plugin sees it.
                g.h.send([FakeHost.Packet(type: [6, 11][Int(rng.next() % 2)], flags: UInt16(rng.next() & 1),
                                          transactionID: rng.next() | 1 << 63, payload: message)], channel: g.primary)
            }
            for packet in g.newPackets(g.primary) {
                if packet.type == 11 && packet.transactionID == tid { answered += 1 }
                if packet.type == 7 {
                    // Complete what the device sent, as the guest does.
                    g.h.send([FakeHost.Packet(type: 11, transactionID: packet.transactionID,
                                              payload: NVSPMessage.rndisPacketComplete(status: 1).encoded())], channel: g.primary)
                    _ = g.newPackets(g.primary)
                }
            }
            for frame in g.ports[0].frames() {
                #expect(frame.frame.count >= 14 && frame.frame.count <= 62780 + 256 + 4)
            }
        }
        #expect(g.h.host.isOpen(g.primary))
        #expect(answered == asked, "every SEND_RNDIS_PKT is completed: \(answered) of \(asked)")
    }
}
