import Foundation
import Synchronization
import Testing
import VMBusProtocol
import VeneerHarness
import VeneerHost
import VeneerPluginABI

/// ABI 1.7's VMBus calls from a C plugin (Tests/Fixtures/plugins/vsp.c) through the real host
/// table into the harness's fake VMBus: the test plays the guest, the fixture makes the calls the
/// guest's commands name and answers with what the host said.
@Suite("ABI 1.7 VSP channels")
struct VSPChannelABITests {
    static func fixture(_ defines: [String] = []) throws -> String {
        let source = TestSupport.repoRoot + "/Tests/Fixtures/plugins/vsp.c"
        return try TestSupport.compilePlugin(try String(contentsOfFile: source, encoding: .utf8), defines: defines, name: "vspfixture")
    }

    static func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func le64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 { b[at..<at + 4].enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * $1.offset) } }
    static func i32(_ b: [UInt8], _ at: Int) -> Int32 { Int32(bitPattern: u32(b, at)) }
    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 { UInt64(u32(b, at)) | UInt64(u32(b, at + 4)) << 32 }

    /// Sends command `bytes` on `channel` and returns the device's answer (the newest packet with
    /// that transaction id).
    static func command(_ h: PluginHarness, _ channel: UInt32, _ bytes: [UInt8], id: UInt64 = 1) throws -> [UInt8] {
        h.send([FakeHost.Packet(transactionID: id, payload: bytes)], channel: channel)
        return try #require(h.host.packetsFromDevice(channel: channel).last { $0.transactionID == id }).payload
    }

    static func segments(_ b: [UInt8], at: Int, count: Int) -> [VMBusSegment] {
        (0..<count).map { VMBusSegment(gpa: u64(b, at + 16 * $0), length: u64(b, at + 16 * $0 + 8)) }
    }

    @Test func subchannelsAreOfferedOnTheOpenPrimaryAndGoWithIt() throws {
        let h = try PluginHarness(plugin: try Self.fixture())
        h.openChannel(1)
        let answer = try Self.command(h, 1, [UInt8(ascii: "S")] + Self.le32(3))
        #expect(Self.i32(answer, 0) == Int32(VENEER_OK))
        let ids = (0..<3).map { Self.u32(answer, 4 + 4 * $0) }
        #expect(h.host.subchannels(of: 1) == zip(ids, [1, 2, 3]).map { FakeHost.Subchannel(channel: $0, index: $1) })
        #expect(Array(h.host.channelEvents.suffix(3)) == zip(ids, [1, 2, 3]).map { .offered(channel: $0, primary: 1, index: $1) })
        #expect(ids.allSatisfy { h.host.offers[$0] == h.host.offers[1] }, "the primary's type and instance")

        // A sub-channel opens and is served on its own; it has no sub-channels of its own.
        h.openChannel(ids[1])
        #expect(Self.i32(try Self.command(h, ids[1], [UInt8(ascii: "S")] + Self.le32(1)), 0) == Int32(VENEER_EINVAL))
        // At most 64 at once.
        #expect(Self.i32(try Self.command(h, 1, [UInt8(ascii: "S")] + Self.le32(61), id: 2), 0) == Int32(VENEER_OK))
        #expect(Self.i32(try Self.command(h, 1, [UInt8(ascii: "S")] + Self.le32(1), id: 3), 0) == Int32(VENEER_ENOSPC))
        #expect(h.host.subchannels(of: 1).count == 64)

        // The guest closes the primary: the open sub-channel hears it first, then all are withdrawn.
        h.closeChannel(1)
        #expect(h.host.logLines.suffix(2) == ["closed \(ids[1])", "closed 1"])
        #expect(h.host.subchannels(of: 1).isEmpty && ids.allSatisfy { h.host.isRescinded($0) })
        #expect(h.host.channelEvents.filter { if case .rescinded = $0 { true } else { false } }.count == 64)
        // Reopened, it starts over.
        h.openChannel(1)
        let again = try Self.command(h, 1, [UInt8(ascii: "S")] + Self.le32(1), id: 4)
        #expect(h.host.subchannels(of: 1).map(\.index) == [1] && h.host.subchannels(of: 1).map(\.channel) == [Self.u32(again, 4)])
    }

    @Test func offersAtRunTimeAndRescinds() throws {
        let h = try PluginHarness(plugin: try Self.fixture())
        h.openChannel(1)
        let added = try Self.command(h, 1, [UInt8(ascii: "O")])
        #expect(Self.i32(added, 0) == Int32(VENEER_OK))
        let id = Self.u32(added, 4)
        #expect(h.host.channelEvents == [.offered(channel: 1, primary: nil, index: 0), .offered(channel: id, primary: nil, index: 0)])
        h.openChannel(id)
        let sub = Self.u32(try Self.command(h, id, [UInt8(ascii: "S")] + Self.le32(1), id: 2), 4)

        #expect(Self.i32(try Self.command(h, 1, [UInt8(ascii: "R")] + Self.le32(sub), id: 3), 0) == Int32(VENEER_EINVAL),
                "a sub-channel goes with its primary")
        #expect(Self.i32(try Self.command(h, 1, [UInt8(ascii: "R")] + Self.le32(id), id: 4), 0) == Int32(VENEER_OK))
        #expect(Array(h.host.channelEvents.suffix(2)) == [.rescinded(channel: sub), .rescinded(channel: id)])
        #expect(h.host.logLines.last == "closed \(id)", "the open channel was closed, after the call returned")
        #expect(h.host.offers.keys.sorted() == [1])
        #expect(Self.i32(try Self.command(h, 1, [UInt8(ascii: "R")] + Self.le32(id), id: 5), 0) == Int32(VENEER_EINVAL), "once")
        // The primary itself: its own channel goes, and with it the way to answer.
        h.send([FakeHost.Packet(transactionID: 6, payload: [UInt8(ascii: "R")] + Self.le32(1))], channel: 1)
        #expect(h.host.offers.isEmpty && h.host.logLines.last == "closed 1")
    }

    @Test func gpaDirectBuffersArriveAsSegments() throws {
        let h = try PluginHarness(plugin: try Self.fixture())
        h.openChannel(1)
        let payload: [UInt8] = Array(1...20)
        h.sendGPADirect(channel: 1, transactionID: 9, gpa: 0x10_0800, length: 0x2000, payload: payload)
        let answer = try #require(h.host.packetsFromDevice(channel: 1).last).payload
        #expect(Self.i32(answer, 0) == 0)
        #expect(Self.u32(answer, 4) & 0xFFFF == 9, "type GPA direct")
        #expect(Self.u32(answer, 8) == 0, "no header: the ranges came as segments")
        #expect(Self.u32(answer, 12) == 20)
        #expect(Self.u32(answer, 16) == 1, "three adjacent pages, one segment")
        #expect(Self.segments(answer, at: 20, count: 1) == [VMBusSegment(gpa: 0x10_0800, length: 0x2000)])
        #expect(Array(answer[36..<56]) == payload)

        // Two ranges, the second on scattered pages.
        let ranges = [PluginHarness.guestRange(gpa: 0x20_0000, length: 0x100),
                      GPARange(byteCount: 0x1800, byteOffset: 0x400, pfns: [0x300, 0x500])]
        h.send([PluginHarness.gpaDirectPacket(transactionID: 10, ranges: ranges, payload: [7])], channel: 1)
        let scattered = try #require(h.host.packetsFromDevice(channel: 1).last).payload
        #expect(Self.u32(scattered, 16) == 3)
        #expect(Self.segments(scattered, at: 20, count: 3)
            == [VMBusSegment(gpa: 0x20_0000, length: 0x100), VMBusSegment(gpa: 0x30_0400, length: 0xC00),
                VMBusSegment(gpa: 0x50_0000, length: 0xC00)])

        // Other packets keep their header before the payload, with no segments.
        h.send([FakeHost.Packet(type: 11, transactionID: 11, header: [1, 2, 3, 4, 5, 6, 7, 8], payload: [9])], channel: 1)
        let completion = try #require(h.host.packetsFromDevice(channel: 1).last).payload
        #expect(Self.u32(completion, 8) == 8 && Self.u32(completion, 16) == 0 && Array(completion[20..<29]) == [1, 2, 3, 4, 5, 6, 7, 8, 9])
    }

    @Test func tooSmallCapacitiesConsumeNothing() throws {
        let h = try PluginHarness(plugin: try Self.fixture())
        h.openChannel(1)
        _ = try Self.command(h, 1, [UInt8(ascii: "C")] + Self.le32(8) + Self.le32(0))
        h.sendGPADirect(channel: 1, transactionID: 20, gpa: 0x10_0000, length: 0x1000, payload: Array(repeating: 3, count: 16))
        let answers = h.host.packetsFromDevice(channel: 1).filter { $0.transactionID == 20 }.map(\.payload)
        #expect(answers.count == 2)
        // First try: what was needed, nothing consumed...
        #expect(Self.i32(answers[0], 0) == Int32(VENEER_ENOSPC))
        #expect(Self.u32(answers[0], 4) == 16 && Self.u32(answers[0], 8) == 1 && Self.u32(answers[0], 12) == 9)
        // ...so the second try gets the same packet whole.
        #expect(Self.i32(answers[1], 0) == 0 && Self.u32(answers[1], 16) == 1 && Self.u32(answers[1], 12) == 16)
        // Enough bytes but no room for the segment is ENOSPC too.
        _ = try Self.command(h, 1, [UInt8(ascii: "C")] + Self.le32(4096) + Self.le32(0), id: 21)
        h.sendGPADirect(channel: 1, transactionID: 22, gpa: 0x10_0000, length: 16, payload: [1])
        #expect(h.host.packetsFromDevice(channel: 1).filter { $0.transactionID == 22 }.map { Self.i32($0.payload, 0) }
            == [Int32(VENEER_ENOSPC), 0])
    }

    @Test func hostileRangesBreakTheChannelUntilItIsReopened() throws {
        let h = try PluginHarness(plugin: try Self.fixture())
        h.openChannel(1)
        for ranges in [[GPARange(byteCount: 0x1000, byteOffset: 0, pfns: [0xFFFF_0000])],            // outside guest RAM
                       [GPARange(byteCount: 0x3000, byteOffset: 0, pfns: [0x100])],                  // too few PFNs
                       [GPARange(byteCount: 0x1000, byteOffset: 0, pfns: [UInt64.max])]] {           // an address that overflows
            h.send([PluginHarness.gpaDirectPacket(transactionID: 30, ranges: ranges, payload: [1])], channel: 1)
            h.send([FakeHost.Packet(transactionID: 31, payload: [UInt8(ascii: "O")])], channel: 1)
            #expect(h.host.packetsFromDevice(channel: 1).isEmpty, "nothing read past the bad packet")
            h.closeChannel(1)
            h.openChannel(1)
        }
        #expect(Self.i32(try Self.command(h, 1, [UInt8(ascii: "C")] + Self.le32(4096) + Self.le32(256)), 0) == 0)
    }

    @Test func gpadlSegmentsBelongToTheChannelOrItsPrimary() throws {
        let h = try PluginHarness(plugin: try Self.fixture())
        h.openChannel(1)
        let other = Self.u32(try Self.command(h, 1, [UInt8(ascii: "O")]), 4)
        let sub = Self.u32(try Self.command(h, 1, [UInt8(ascii: "S")] + Self.le32(1), id: 2), 4)
        h.openChannel(sub)
        #expect(h.defineGPADL(5, channel: 1, ranges: [GPARange(byteCount: 0x3000, byteOffset: 0, pfns: [0x200, 0x201, 0x300])]))
        #expect(h.defineGPADL(6, channel: other, ranges: [PluginHarness.guestRange(gpa: 0x40_0000, length: 0x1000)]))
        #expect(!h.defineGPADL(7, channel: 1, ranges: [GPARange(byteCount: 0x1000, byteOffset: 0, pfns: [0xFFFF_FFFF])]), "not RAM")
        let expected = [VMBusSegment(gpa: 0x20_0000, length: 0x2000), VMBusSegment(gpa: 0x30_0000, length: 0x1000)]

        func ask(_ on: UInt32, _ channel: UInt32, _ gpadl: UInt32, _ capacity: UInt32, id: UInt64) throws -> [UInt8] {
            try Self.command(h, on, [UInt8(ascii: "G")] + Self.le32(channel) + Self.le32(gpadl) + Self.le32(capacity), id: id)
        }
        let own = try ask(1, 1, 5, 8, id: 3)
        #expect(Self.i32(own, 0) == 0 && Self.u32(own, 4) == 2 && Self.segments(own, at: 8, count: 2) == expected)
        let viaSub = try ask(sub, sub, 5, 8, id: 4)
        #expect(Self.i32(viaSub, 0) == 0 && Self.segments(viaSub, at: 8, count: 2) == expected, "a sub-channel reaches its primary's")
        let small = try ask(1, 1, 5, 1, id: 5)
        #expect(Self.i32(small, 0) == Int32(VENEER_ENOSPC) && Self.u32(small, 4) == 2)
        #expect(Self.i32(try ask(1, 1, 6, 8, id: 6), 0) == Int32(VENEER_EINVAL), "another channel's GPADL")
        #expect(Self.i32(try ask(1, other, 5, 8, id: 7), 0) == Int32(VENEER_EINVAL))
        #expect(Self.i32(try ask(1, 1, 99, 8, id: 8), 0) == Int32(VENEER_EINVAL), "no such GPADL")
        h.tearDownGPADL(5, channel: 1)
        #expect(Self.i32(try ask(1, 1, 5, 8, id: 9), 0) == Int32(VENEER_EINVAL), "torn down")
    }

    @Test func batchesWriteInOrderAndSignalOnce() throws {
        let h = try PluginHarness(plugin: try Self.fixture())
        h.openChannel(1)
        let signals = h.host.guestSignals(channel: 1)
        let answer = try Self.command(h, 1, [UInt8(ascii: "B")] + Self.le32(10) + Self.le32(0) + Self.le32(0))
        #expect(Self.i32(answer, 0) == 0 && Self.u32(answer, 4) == 10)
        let batch = h.host.packetsFromDevice(channel: 1).filter { $0.transactionID >= 1000 }
        #expect(batch.map(\.transactionID) == (1000..<1010).map(UInt64.init))
        #expect(batch.map(\.payload) == (0..<10).map { [UInt8($0)] })
        #expect(h.host.guestSignals(channel: 1) == signals + 2, "one for the batch, one for the answer")

        // Transfer-page packets carry the plugin's header; a wider stride is fine.
        let pages = try Self.command(h, 1, [UInt8(ascii: "B")] + Self.le32(3) + Self.le32(96) + Self.le32(1), id: 2)
        #expect(Self.i32(pages, 0) == 0 && Self.u32(pages, 4) == 3)
        let sent = h.host.packetsFromDevice(channel: 1).suffix(4).dropLast()
        #expect(sent.map(\.type) == [7, 7, 7] && sent.map(\.header) == (0..<3).map { [UInt8($0)] + [UInt8](repeating: 0, count: 15) })

        // A malformed packet anywhere writes nothing.
        for mode: UInt32 in 2...6 {
            let before = h.host.packetsFromDevice(channel: 1).count
            let refused = try Self.command(h, 1, [UInt8(ascii: "B")] + Self.le32(3) + Self.le32(0) + Self.le32(mode), id: 3 + UInt64(mode))
            #expect(Self.i32(refused, 0) == Int32(VENEER_EINVAL) && Self.u32(refused, 4) == 0, "mode \(mode)")
            #expect(h.host.packetsFromDevice(channel: 1).count == before + 1, "only the answer, mode \(mode)")
        }

        // A full ring takes what fits: the batch stops there.
        h.limitRoom(4, channel: 1)
        h.send([FakeHost.Packet(transactionID: 20, payload: [UInt8(ascii: "B")] + Self.le32(10) + Self.le32(0) + Self.le32(0))], channel: 1)
        #expect(h.host.packetsFromDevice(channel: 1).suffix(4).map(\.transactionID) == [1000, 1001, 1002, 1003])
    }

    @Test func everyNewCallRefusesBadArguments() throws {
        let h = try PluginHarness(plugin: try Self.fixture())
        h.openChannel(1)
        let answer = try Self.command(h, 1, [UInt8(ascii: "Z")])
        let statuses = (0..<answer.count / 4).map { Self.i32(answer, 4 * $0) }
        #expect(statuses.count == 21)
        for (i, status) in statuses.enumerated().dropLast() {
            #expect(status == Int32(VENEER_EINVAL), "call \(i) of vsp.c's bad_arguments")
        }
        #expect(statuses.last == Int32(VENEER_OK), "an empty batch is fine")
        #expect(h.host.subchannels(of: 1).isEmpty && h.host.offers.count == 1, "nothing happened on the way")
    }

    @Test func mappedGuestMemoryIsTheGuestsOwn() throws {
        let h = try PluginHarness(plugin: try Self.fixture())
        h.openChannel(1)
        #expect(Self.i32(try Self.command(h, 1, [UInt8(ascii: "M")] + Self.le64(0x10_0ff0) + Self.le32(0x20)), 0) == 0)
        #expect(try h.readGuest(0x10_0ff0, count: 0x20) == [UInt8](repeating: 0xA5, count: 0x20))
        #expect(Self.i32(try Self.command(h, 1, [UInt8(ascii: "M")] + Self.le64(0xFFFF_0000) + Self.le32(0x20), id: 2), 0) == -1)
    }

    @Test func aConcurrentPluginRunsChannelsInParallelButNeverOneChannelTwice() throws {
        let h = try PluginHarness(plugin: try Self.fixture(["CONCURRENT"]))
        #expect(h.library.info.concurrent)
        let done = Flag()
        let device = h.device
        // Many signals on two channels from three threads, while a fourth waits inside channel
        // 1000's callback for another channel's callback to run at the same time.
        let finished = DispatchGroup()
        for t in 0..<4 {
            finished.enter()
            Thread.detachNewThread {
                if t == 0 {
                    device.vmbusSignalled(channel: 1000)
                    done.value.store(true, ordering: .releasing)
                } else {
                    var n = 0
                    while !done.value.load(ordering: .acquiring) || n < 200 {
                        device.vmbusSignalled(channel: t == 2 ? 7 : 8)
                        n += 1
                    }
                }
                finished.leave()
            }
        }
        finished.wait()
        #expect(!h.host.logLines.contains { $0.hasPrefix("overlap") }, "never two callbacks of one channel at once")
        #expect(h.host.logLines.contains("parallel"), "callbacks of different channels ran at once")
    }
}

private final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}
