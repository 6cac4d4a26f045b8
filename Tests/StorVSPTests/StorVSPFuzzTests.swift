import Foundation
import Testing
import SCSIProtocol
import StorVSPProtocol
@testable import StorVSP

/// Random and mutated packets through a ready channel: nothing may crash, every packet is answered
/// or counted as dropped, replies are well-formed, and nothing is touched outside the disk or the
/// guest's RAM. `VENEER_FUZZ_ITERATIONS` (default 20,000) and `VENEER_FUZZ_SEED` pick the run.
@Suite("storvsp fuzz")
struct StorVSPFuzzTests {
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

    static let templates: [[UInt8]] = [
        [0x00, 0, 0, 0, 0, 0], [0x03, 0, 0, 0, 18, 0], [0x12, 0, 0, 0, 36, 0], [0x12, 1, 0x83, 0, 255, 0],
        [0x1A, 0, 0x3F, 0, 192, 0], [0x5A, 0, 0x08, 0, 0, 0, 0, 1, 0, 0], [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], [0x28, 0, 0, 0, 0, 8, 0, 0, 8, 0],
        [0x2A, 0x08, 0, 0, 0, 8, 0, 0, 8, 0], [0x88, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0],
        [0x8A, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0], [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], [0x93, 0x08, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0],
        [0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], [0x08, 0, 0, 1, 4, 0], [0x0A, 0, 0, 2, 1, 0], [0x1B, 0, 0, 0, 1, 0],
    ]

    /// The synchronous test engine (fast: the full count), and VeneerDisk's libaio engine with
    /// O_DIRECT (a tenth of it).
    @Test(arguments: [false, true])
    func randomAndMutatedPacketsNeverEscape(libaio: Bool) throws {
        let env = ProcessInfo.processInfo.environment
        let requested = Int(env["VENEER_FUZZ_ITERATIONS"] ?? "") ?? 20_000
        let iterations = libaio ? requested / 10 : requested
        let seed = UInt64(env["VENEER_FUZZ_SEED"] ?? "") ?? 0x5EED_570B
        var rng = SplitMix(state: seed)
        let disk = try makeDisk(blocks: 512, cache: libaio ? .none : .writeback, discard: true, fill: { UInt8(truncatingIfNeeded: $0) })
        let f = ChannelFixture(units: [disk.0], paths: [disk.1], depth: 32,
                               factory: libaio ? AsyncQueueFactory(depth: 32) as any LUNQueueFactory : SynchronousQueueFactory())
        try f.initializeLikeLinux()
        let ramEnd = f.guest.ramBase + UInt64(f.guest.ram.count)
        var sent = 0, answered = 0

        for _ in 0..<iterations {
            var packet: IncomingPacket
            switch rng.next() % 4 {
            case 0:
                // Pure noise.
                let count = Int(rng.next() % 80)
                packet = IncomingPacket(type: [6, 9, 7, 11, UInt16(rng.next() & 0xFFFF)][Int(rng.next() % 5)], flags: UInt16(rng.next() & 3),
                                        transactionID: rng.next(), payload: (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
                                        segments: [])
            default:
                // A valid request, then a few bytes or fields changed.
                let cdb = Self.templates[Int(rng.next() % UInt64(Self.templates.count))]
                let length = Int(rng.next() % 6) == 0 ? Int(rng.next() % (1 << 20)) : Int(rng.next() % 8193)
                let direction = VMSCSIRequest.DataDirection(rawValue: UInt8(rng.next() % 3)) ?? .none
                let gpa = rng.next() % 8 == 0 ? rng.next() : f.guest.ramBase + (rng.next() % UInt64(f.guest.ram.count))
                packet = Guest.srb(cdb, lun: UInt8(rng.next() % 4 == 0 ? rng.next() & 0xFF : 0), direction: direction,
                                   length: length, gpa: length > 0 ? gpa : nil, id: rng.next())
                for _ in 0..<Int(rng.next() % 4) {
                    let at = Int(rng.next() % UInt64(max(packet.payload.count, 1)))
                    if at < packet.payload.count { packet.payload[at] = UInt8(truncatingIfNeeded: rng.next()) }
                }
                if rng.next() % 5 == 0 { packet.payload = Array(packet.payload.prefix(Int(rng.next() % 70))) }
                if rng.next() % 6 == 0 {
                    packet.segments = (0..<Int(rng.next() % 4)).map { _ in
                        GuestSegmentRange(gpa: rng.next() % 2 == 0 ? rng.next() : f.guest.ramBase + rng.next() % UInt64(f.guest.ram.count),
                                          length: rng.next() % 3 == 0 ? rng.next() : rng.next() % 16384)
                    }
                }
            }
            sent += 1
            f.guest.incoming.append(packet)
            if f.guest.incoming.count >= 16 || rng.next() % 3 == 0 {
                f.primary.signalled()
                if libaio && rng.next() % 2 == 0 { f.drainEngines() }
                for reply in f.guest.takeReplies() {
                    answered += 1
                    #expect(reply.payload.count >= 12 && reply.payload.count <= 64)
                    #expect(reply.type == 11 || reply.transactionID == 0)
                }
            }
        }
        f.primary.signalled()
        f.drainEngines()
        f.primary.signalled()
        answered += f.guest.takeReplies().count
        #expect(!f.primary.broken)
        #expect(UInt64(answered) + f.primary.counters.dropped == UInt64(sent), "every packet answered or counted")
        #expect(f.primary.commandsInFlight == 0)
        let size = try FileManager.default.attributesOfItem(atPath: disk.1)[.size] as? Int
        #expect(size == 512 * 512, "nothing written past the disk's end")
        _ = ramEnd
        print("storvsp fuzz (\(libaio ? "libaio" : "synchronous") engine): \(sent) packets (seed \(seed)), \(answered) answered, \(f.primary.counters.dropped) dropped, "
              + "\(f.primary.counters.refused) refused, \(f.primary.counters.badBuffers) bad buffers")
    }
}
