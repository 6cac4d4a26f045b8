import Dispatch
import Foundation
import Testing
import SCSIProtocol
import StorVSPProtocol
@testable import StorVSP

/// Channels of one controller served on different threads at once (the plugin is declared
/// concurrent), while LUNs come and go: every command is answered on its own channel, and the data
/// lands where each channel wrote it.
@Suite("storvsp concurrency")
struct StorVSPConcurrencyTests {
    @Test func channelsRunInParallelWhileLUNsAreHotPlugged() throws {
        let (disk, path) = try makeDisk(blocks: 4096)
        let (extra, extraPath) = try makeDisk(lun: 5, blocks: 64)
        defer { unlink(path); unlink(extraPath) }
        let f = ChannelFixture(units: [disk], depth: 8)
        try f.initializeLikeLinux()
        let channels = 4, perChannel = 300
        let sessions = (0..<channels).map { i -> (ChannelSession, FakeGuestChannel) in
            let g = FakeGuestChannel()
            let s = ChannelSession(channel: UInt32(10 + i), isPrimary: false, controller: f.controller, transport: g,
                                   hooks: .init(offerSubChannels: { _ in false }, watch: { _, _ in true }, unwatch: { _ in }, log: { _ in }))
            return (s, g)
        }
        let done = DispatchGroup()
        let controller = f.controller
        DispatchQueue.global().async(group: done) {
            for n in 0..<200 {
                _ = controller.update { map in
                    if n % 2 == 0 { map.attach(extra) } else { map.detach(target: 0, lun: 5) }
                    return true
                }
            }
        }
        DispatchQueue.concurrentPerform(iterations: channels) { index in
            let (session, guest) = sessions[index]
            for n in 0..<perChannel {
                // Each channel owns blocks [index * 1000, index * 1000 + perChannel).
                let lba = UInt32(index * 1000 + n)
                let gpa = guest.ramBase + UInt64(n % 64) * 512
                guest.poke(gpa, [UInt8](repeating: UInt8(truncatingIfNeeded: lba), count: 512))
                let cdb: [UInt8] = [0x2A, 0, UInt8(lba >> 24), UInt8((lba >> 16) & 0xFF), UInt8((lba >> 8) & 0xFF), UInt8(lba & 0xFF), 0, 0, 1, 0]
                guest.incoming.append(Guest.srb(cdb, direction: .write, length: 512, gpa: gpa, id: UInt64(n + 1)))
                guest.incoming.append(Guest.srb([0, 0, 0, 0, 0, 0], lun: 5, id: UInt64(100_000 + n)))
                session.signalled()
            }
        }
        done.wait()
        let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for (index, (_, guest)) in sessions.enumerated() {
            let replies = guest.takeReplies()
            #expect(replies.count == 2 * perChannel, "channel \(index)")
            let writes = replies.filter { $0.transactionID < 100_000 }
            #expect(Set(writes.map(\.transactionID)) == Set((1...perChannel).map(UInt64.init)))
            #expect(try writes.allSatisfy { try SRBCompletion($0).srb == 1 })
            // TEST UNIT READY to the LUN that comes and goes: present or INVALID_LUN, nothing else.
            let probes = try replies.filter { $0.transactionID >= 100_000 }.map { try SRBCompletion($0).srb }
            #expect(probes.allSatisfy { $0 == 1 || $0 == SRBStatus.invalidLUN.rawValue })
            let wrong = (0..<perChannel).filter { n in
                let lba = index * 1000 + n
                return !file[(lba * 512)..<(lba * 512 + 512)].allSatisfy { $0 == UInt8(truncatingIfNeeded: lba) }
            }
            #expect(wrong.isEmpty, "channel \(index)")
        }
    }
}
