import ICProtocol
import Testing
import VeneerHarness
import VeneerHost

/// The guest side of an IC channel as Linux `hv_utils` behaves (drivers/hv/hv_util.c and
/// vmbus_prep_negotiate_resp in channel_mgmt.c): it reads each host packet at its ring length (the
/// payload padded to 8 bytes), drops packets shorter than 28 bytes, answers a negotiate request in
/// the same buffer (walking its own preference list, counts 1/1 and its two choices in entries 0
/// and 1, icmsgsize 16; counts 0/0 when nothing matches or the counts are bad), adds one to a
/// heartbeat's seq_num (if at least 8 body bytes), takes time-sync and shutdown messages as below,
/// fails other types with HV_E_FAIL, sets icflags to TRANSACTION|RESPONSE and sends the whole
/// buffer back with the host's request id.
///
/// Time sync (timesync_onchannelcallback): above message version 3.0 a body shorter than 22 bytes
/// (`ictimesync_ref_data`), otherwise one shorter than 25 (`ictimesync_data`), is dropped without
/// an answer and reading stops there; otherwise the sample is recorded (SYNC sets the clock) and answered as it came.
/// Shutdown (shutdown_onchannelcallback): a body shorter than 2060 bytes is dropped without an
/// answer; flags 0/1 shut down and 2/3 restart (S_OK), 4/5 hibernate (S_OK only with ACPI S4, else
/// HV_E_FAIL), anything else HV_E_FAIL; the answer goes out before the action is taken.
struct LinuxICGuest {
    var frameworkVersions: [ICVersion] = [ICVersion(3, 0), ICVersion(1, 0)]
    var messageVersions: [ICVersion] = [ICVersion(3, 0), ICVersion(1, 0)]
    /// Packets from the device already answered (or dropped).
    var seen = 0
    /// The message version the last negotiation chose (nil: none).
    var negotiated: ICVersion?
    /// Time-sync messages taken: (parenttime, vmreferencetime or nil, flags).
    var timeSamples: [(parent: UInt64, reference: UInt64?, flags: UInt8)] = []
    /// Whether the guest has ACPI S4 (Linux answers hibernate requests by it).
    var hibernationSupported = false
    /// What the guest did after answering a shutdown request: "poweroff", "reboot", "hibernate".
    var actions: [String] = []
    static let failStatus: [UInt8] = [0x05, 0x40, 0x00, 0x80]

    static func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
    static func put16(_ b: inout [UInt8], _ at: Int, _ v: UInt16) { b[at] = UInt8(v & 0xff); b[at + 1] = UInt8(v >> 8) }

    /// Linux's answer to one host packet, or nil when it drops it.
    mutating func answer(_ packet: FakeHost.Packet) -> FakeHost.Packet? {
        var buffer = packet.payload + [UInt8](repeating: 0, count: (8 - packet.payload.count % 8) % 8)
        let length = buffer.count
        guard length >= 28 else { return nil }
        buffer += [UInt8](repeating: 0, count: 64)   // Linux's receive buffer is larger than the packet
        switch Self.u16(buffer, 12) {
        case 0:
            negotiate(&buffer, length: length)
        case 1:
            guard length >= 36 else { return nil }
            var seq: UInt64 = 0
            for i in 0..<8 { seq |= UInt64(buffer[28 + i]) << (8 * i) }
            seq &+= 1
            for i in 0..<8 { buffer[28 + i] = UInt8(truncatingIfNeeded: seq >> (8 * i)) }
        case 3:
            guard length >= 28 + 2060 else { return nil }
            var flags: UInt32 = 0
            for i in 0..<4 { flags |= UInt32(buffer[36 + i]) << (8 * i) }
            var action: String?
            switch flags {
            case 0, 1: action = "poweroff"
            case 2, 3: action = "reboot"
            case 4, 5: action = hibernationSupported ? "hibernate" : nil
            default: action = nil
            }
            if action == nil { for (i, b) in Self.failStatus.enumerated() { buffer[20 + i] = b } }
            buffer[25] = 5
            if let action { actions.append(action) }   // after the answer is prepared, as Linux schedules its work
            return FakeHost.Packet(transactionID: packet.transactionID, payload: Array(buffer.prefix(length)))
        case 4:
            func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(buffer[at + $1]) << (8 * $1) } }
            if let v = negotiated, v > ICVersion(3, 0) {   // Linux: ts_srv_version > TS_VERSION_3
                guard length >= 28 + 22 else { return nil }
                timeSamples.append((u64(28), u64(36), buffer[44]))
            } else {
                guard length >= 28 + 25 else { return nil }
                timeSamples.append((u64(28), nil, buffer[52]))
            }
        default:
            for (i, b) in Self.failStatus.enumerated() { buffer[20 + i] = b }
        }
        buffer[25] = 5
        return FakeHost.Packet(transactionID: packet.transactionID, payload: Array(buffer.prefix(length)))
    }

    private mutating func negotiate(_ b: inout [UInt8], length: Int) {
        guard length >= 28 + 4 else { return }
        Self.put16(&b, 18, 16)
        let frameworkCount = Int(Self.u16(b, 28)), messageCount = Int(Self.u16(b, 30))
        func entry(_ i: Int) -> ICVersion { ICVersion(Self.u16(b, 36 + 4 * i), Self.u16(b, 38 + 4 * i)) }
        var framework = ICVersion(UInt16(frameworkCount), 0), message = ICVersion(UInt16(messageCount), 0)
        var found = false
        if frameworkCount <= 100, messageCount <= 100, 36 + 4 * (frameworkCount + messageCount) <= length {
            if let f = frameworkVersions.first(where: { v in (0..<frameworkCount).contains { entry($0) == v } }) {
                framework = f
                if let m = messageVersions.first(where: { v in (frameworkCount..<frameworkCount + messageCount).contains { entry($0) == v } }) {
                    message = m
                    found = true
                }
            }
        }
        negotiated = found ? message : nil
        Self.put16(&b, 28, found ? 1 : 0)
        Self.put16(&b, 30, found ? 1 : 0)
        for (i, v) in [framework, message].enumerated() {
            Self.put16(&b, 36 + 4 * i, v.major)
            Self.put16(&b, 38 + 4 * i, v.minor)
        }
    }

    /// `answer`, failing the test (by throwing) when Linux would drop the packet.
    mutating func requiredAnswer(_ packet: FakeHost.Packet) throws -> FakeHost.Packet {
        guard let reply = answer(packet) else { throw DroppedByGuest(transactionID: packet.transactionID) }
        return reply
    }

    struct DroppedByGuest: Error { var transactionID: UInt64 }

    /// Answers every packet the device wrote since the last call, in one batch (one signal).
    mutating func answerNew(_ h: PluginHarness, channel: UInt32 = 1) {
        let packets = h.host.packetsFromDevice(channel: channel)
        var replies: [FakeHost.Packet] = []
        // Linux stops reading at a packet it drops (the rest waits for the next signal).
        while seen < packets.count {
            seen += 1
            guard let reply = answer(packets[seen - 1]) else { break }
            replies.append(reply)
        }
        if !replies.isEmpty { h.send(replies, channel: channel) }
    }

    /// Marks everything written so far as seen without answering.
    mutating func ignoreNew(_ h: PluginHarness, channel: UInt32 = 1) { seen = h.host.packetsFromDevice(channel: channel).count }
}

@Suite("heartbeat")
struct HeartbeatTests {
    static let second: UInt64 = 1_000_000_000

    /// The device's packets decoded as IC frames.
    static func frames(_ h: PluginHarness) throws -> [ICFrame] {
        try h.host.packetsFromDevice(channel: 1).map { try ICFrame.decode($0.payload) }
    }

    static func infoLines(_ h: PluginHarness) -> [String] { h.host.logLines.filter { $0.contains("guest health") } }

    /// A harness whose guest has opened the channel and negotiated like Linux.
    static func negotiated(_ parameters: [String: ParameterInput] = [:], guest: inout LinuxICGuest) throws -> PluginHarness {
        let h = try PluginHarness(plugin: "heartbeat", parameters: parameters)
        h.openChannel(1)
        guest.answerNew(h)
        return h
    }

    @Test func offersTheHeartbeatChannelAsAMessageModePipe() throws {
        let h = try PluginHarness(plugin: "heartbeat")
        #expect(h.library.info.kind == .synthetic)
        let offer = try #require(h.host.offers[1])
        #expect(h.host.offers.count == 1)
        #expect(offer.interfaceType == [0x39, 0x4f, 0x16, 0x57, 0x15, 0x91, 0x78, 0x4e, 0xab, 0x55, 0x38, 0x2f, 0x3b, 0xd5, 0x42, 0x2d])
        #expect(offer.interfaceInstance == [0x7e, 0x9e, 0x3a, 0x9c, 0x6b, 0x5f, 0x2a, 0x4f, 0x8d, 0x0c, 0x48, 0x65, 0x61, 0x72, 0x74, 0xbe])
        #expect(offer.channelFlags == 0x11, "ENUMERATE_DEVICE_INTERFACE | NAMED_PIPE_MODE")
        #expect(offer.userDefined == [4, 0, 0, 0], "message-mode pipe")
        #expect(h.host.packetsFromDevice(channel: 1).isEmpty, "nothing is sent before the guest opens the channel")
    }

    @Test func negotiatesWithLinuxsExactReplyThenBeatsEveryInterval() throws {
        let h = try PluginHarness(plugin: "heartbeat")
        h.openChannel(1)
        let request = try #require(try Self.frames(h).first)
        let raw = try #require(h.host.packetsFromDevice(channel: 1).first)
        #expect(raw.payload.count == 52 && raw.type == 6 && raw.flags == 0)
        #expect(request.pipe == PipeHeader(flags: 1, messageSize: 44))
        #expect(request.header.messageType == .negotiate)
        #expect(request.header.flags == [.transaction, .request])
        #expect(request.header.frameworkVersion == .zero && request.header.messageVersion == .zero)
        #expect(request.header.transactionID == UInt8(truncatingIfNeeded: raw.transactionID))
        let offered = try NegotiateMessage.decode(request.body[...])
        #expect(offered.frameworkVersions == [ICVersion(1, 0), ICVersion(3, 0)])
        #expect(offered.messageVersions == [ICVersion(1, 0), ICVersion(3, 0)])

        var guest = LinuxICGuest()
        guest.answerNew(h)   // 56 bytes back: the request padded to 8, as the ring delivers it
        #expect(h.host.logLines.contains("heartbeat IC: negotiated framework 3.0, heartbeat 3.0"))
        // The first heartbeat goes out at once, with the negotiated versions.
        let beat = try #require(try Self.frames(h).last)
        #expect(try Self.frames(h).count == 2)
        #expect(beat.header.messageType == .heartbeat)
        #expect(beat.header.frameworkVersion == ICVersion(3, 0) && beat.header.messageVersion == ICVersion(3, 0))
        #expect(beat.header.flags == .hostRequest && beat.header.messageSize == 16)
        #expect(try HeartbeatMessage.decode(beat.body[...]).sequenceNumber == 0)
        #expect(h.host.armedTimers[1]?.period == 2 * Self.second, "default interval 2000 ms")

        guest.answerNew(h)
        #expect(Self.infoLines(h) == ["heartbeat: guest health no contact -> ok: heartbeat 0 answered"])
        for n in 1...5 {
            h.advance(nanoseconds: 2 * Self.second)
            let frames = try Self.frames(h)
            #expect(frames.count == 2 + n)
            #expect(try HeartbeatMessage.decode(frames[1 + n].body[...]).sequenceNumber == UInt64(n))
            guest.answerNew(h)
        }
        #expect(Self.infoLines(h).count == 1, "no transition while the guest answers")
        let ids = h.host.packetsFromDevice(channel: 1).map(\.transactionID)
        #expect(Set(ids).count == ids.count, "every request has its own id")
    }

    @Test func aGuestWithOnlyVersionOneNegotiatesOneDotZero() throws {
        var guest = LinuxICGuest(frameworkVersions: [ICVersion(1, 0)], messageVersions: [ICVersion(1, 0)])
        let h = try Self.negotiated(guest: &guest)
        #expect(h.host.logLines.contains("heartbeat IC: negotiated framework 1.0, heartbeat 1.0"))
        let beat = try #require(try Self.frames(h).last)
        #expect(beat.header.frameworkVersion == ICVersion(1, 0) && beat.header.messageVersion == ICVersion(1, 0))
        guest.answerNew(h)
        #expect(Self.infoLines(h).last?.hasSuffix("no contact -> ok: heartbeat 0 answered") == true)
    }

    @Test func aGuestWithNoCommonVersionGetsNoHeartbeats() throws {
        var guest = LinuxICGuest(frameworkVersions: [ICVersion(3, 0)], messageVersions: [ICVersion(4, 0)])
        let h = try Self.negotiated(guest: &guest)
        #expect(h.host.logLines.contains { $0.contains("supports none of the offered versions") })
        h.advance(nanoseconds: 20 * Self.second)
        #expect(h.host.packetsFromDevice(channel: 1).count == 1, "only the negotiate request")
        #expect(Self.infoLines(h).isEmpty)
    }

    /// Rewrites the negotiate answer's counts and entries before the device sees it.
    static func negotiate(answering transform: (inout [UInt8]) -> Void) throws -> PluginHarness {
        let h = try PluginHarness(plugin: "heartbeat")
        h.openChannel(1)
        let request = try #require(h.host.packetsFromDevice(channel: 1).first)
        var linux = LinuxICGuest()
        var reply = try linux.requiredAnswer(request)
        transform(&reply.payload)
        h.send([reply], channel: 1)
        return h
    }

    @Test func badCountsOrUnofferedChoicesFailNegotiation() throws {
        let cases: [(String, (inout [UInt8]) -> Void)] = [
            ("the guest answered counts 2/1, expected 1/1", { LinuxICGuest.put16(&$0, 28, 2) }),
            ("the guest answered counts 1/0, expected 1/1", { LinuxICGuest.put16(&$0, 30, 0) }),
            ("the guest chose framework version 2.0, which was not offered", { LinuxICGuest.put16(&$0, 36, 2) }),
            ("the guest chose message version 3.1, which was not offered", { LinuxICGuest.put16(&$0, 42, 1) }),
            ("field icframe_vercnt has invalid value 101", { LinuxICGuest.put16(&$0, 28, 101) }),
            ("field icmsgtype has invalid value 1", { LinuxICGuest.put16(&$0, 12, 1) }),
            ("field icflags has invalid value 3", { $0[25] = 3 }),
            ("field ictransaction_id", { $0[24] &+= 1 }),
        ]
        for (expected, transform) in cases {
            let h = try Self.negotiate(answering: transform)
            #expect(h.host.logLines.contains { $0.contains("version negotiation failed") && $0.contains(expected) }, "\(expected): \(h.host.logLines)")
            h.advance(nanoseconds: 10 * Self.second)
            #expect(h.host.packetsFromDevice(channel: 1).count == 1, "\(expected): no heartbeat after a failed negotiation")
        }
    }

    @Test func shortPacketsAreRefusedWithoutBlockingTheChannel() throws {
        let h = try PluginHarness(plugin: "heartbeat")
        h.openChannel(1)
        let request = try #require(h.host.packetsFromDevice(channel: 1).first)
        // Junk with unknown ids and a non-in-band packet: ignored, the negotiation stays pending.
        h.send([FakeHost.Packet(transactionID: 999, payload: [1, 2, 3]),
                FakeHost.Packet(transactionID: 0, payload: []),
                FakeHost.Packet(type: 11, transactionID: request.transactionID, payload: [0])], channel: 1)
        #expect(!h.host.logLines.contains { $0.contains("negotiat") && $0.contains("fail") })
        var guest = LinuxICGuest()
        guest.answerNew(h)
        #expect(h.host.logLines.contains("heartbeat IC: negotiated framework 3.0, heartbeat 3.0"))

        // A short answer to a heartbeat (27 and 30 bytes) is a miss; the next heartbeat still goes out.
        for length in [27, 30] {
            let beat = try #require(h.host.packetsFromDevice(channel: 1).last)
            guest.ignoreNew(h)
            var reply = try guest.requiredAnswer(beat)
            reply.payload = Array(reply.payload.prefix(length))
            h.send([reply], channel: 1)
            #expect(h.host.logLines.last { $0.contains("missed") }?.contains("needs") == true, "\(h.host.logLines)")
            h.advance(nanoseconds: 2 * Self.second)
        }
        #expect(try Self.frames(h).count == 4)
        guest.answerNew(h)
        #expect(Self.infoLines(h) == ["heartbeat: guest health no contact -> ok: heartbeat 2 answered"])
    }

    @Test func aWrongSequenceNumberIsAMissAndThreeMakeTheGuestLost() throws {
        var guest = LinuxICGuest()
        let h = try Self.negotiated(guest: &guest)
        guest.answerNew(h)   // heartbeat 0: ok
        for _ in 0..<3 {
            h.advance(nanoseconds: 2 * Self.second)
            let beat = try #require(h.host.packetsFromDevice(channel: 1).last)
            guest.ignoreNew(h)
            var reply = try guest.requiredAnswer(beat)
            reply.payload[28] &+= 1   // seq_num + 2
            h.send([reply], channel: 1)
        }
        #expect(h.host.logLines.contains { $0.contains("answered sequence number 3, expected 2") })
        #expect(Self.infoLines(h).last == "heartbeat: guest health ok -> lost: 3 heartbeats in a row missed, the last: the guest answered sequence number 5, expected 4")
        h.advance(nanoseconds: 2 * Self.second)
        guest.answerNew(h)
        #expect(Self.infoLines(h).last == "heartbeat: guest health lost -> ok: heartbeat 4 answered")
    }

    @Test func aFailureStatusIsAMiss() throws {
        var guest = LinuxICGuest()
        let h = try Self.negotiated(["lost_after": .int(1)], guest: &guest)
        let beat = try #require(h.host.packetsFromDevice(channel: 1).last)
        guest.ignoreNew(h)
        var reply = try guest.requiredAnswer(beat)
        for (i, b) in [0x05, 0x40, 0x00, 0x80].enumerated() { reply.payload[20 + i] = UInt8(b) }
        h.send([reply], channel: 1)
        #expect(Self.infoLines(h) == ["heartbeat: guest health no contact -> lost: 1 heartbeats in a row missed, the last: the guest answered with status 0x80004005"])
    }

    @Test func aGuestThatStopsAnsweringTimesOutAndIsLost() throws {
        var guest = LinuxICGuest()
        let h = try Self.negotiated(["interval_ms": .int(1000)], guest: &guest)
        guest.answerNew(h)
        #expect(Self.infoLines(h).count == 1)
        // Heartbeat 1 goes unanswered: it times out at 3/4 of the interval, before heartbeat 2.
        h.advance(nanoseconds: Self.second)
        h.advance(nanoseconds: 749_000_000)
        #expect(!h.host.logLines.contains { $0.contains("missed") })
        h.advance(nanoseconds: 1_000_000)
        #expect(h.host.logLines.contains("heartbeat: heartbeat 1 missed: no answer within 750 ms"))
        h.advance(nanoseconds: 10 * Self.second)
        #expect(Self.infoLines(h).last == "heartbeat: guest health ok -> lost: 3 heartbeats in a row missed, the last: no answer within 750 ms")
        // One heartbeat per interval, never more than one outstanding.
        #expect(try Self.frames(h).count == 2 + 11)
        #expect(h.host.logLines.filter { $0.contains("missed: no answer") }.count == 11)
        // Late answers to timed-out heartbeats are dropped; a timely one makes the guest ok again.
        guest.answerNew(h)
        #expect(Self.infoLines(h).count == 2)
        #expect(h.host.logLines.filter { $0.contains("dropped a late answer") }.count == 11)
        h.advance(nanoseconds: 250_000_000)   // heartbeat 12 is due
        guest.answerNew(h)
        #expect(Self.infoLines(h).last == "heartbeat: guest health lost -> ok: heartbeat 12 answered")
    }

    @Test func anUnansweredNegotiationIsReportedAndAcceptedLate() throws {
        let h = try PluginHarness(plugin: "heartbeat")
        h.openChannel(1)
        h.advance(nanoseconds: 30 * Self.second)
        #expect(h.host.logLines.filter { $0.contains("has not answered version negotiation within 10000 ms") }.count == 1)
        #expect(h.host.packetsFromDevice(channel: 1).count == 1, "no duplicate requests queued in the guest's ring")
        var guest = LinuxICGuest()
        guest.answerNew(h)
        #expect(h.host.logLines.contains("heartbeat IC: negotiated framework 3.0, heartbeat 3.0"))
        guest.answerNew(h)
        #expect(Self.infoLines(h).count == 1)
    }

    @Test func closingStopsHeartbeatsAndReopeningNegotiatesAgain() throws {
        var guest = LinuxICGuest()
        let h = try Self.negotiated(guest: &guest)
        guest.answerNew(h)
        h.closeChannel(1)
        #expect(Self.infoLines(h).last == "heartbeat: guest health ok -> no contact: the channel closed (1 sent, 1 answered, 0 missed so far)")
        #expect(h.host.armedTimers.isEmpty, "no timers while closed")
        let sent = h.host.packetsFromDevice(channel: 1).count
        h.advance(nanoseconds: 20 * Self.second)
        #expect(h.host.packetsFromDevice(channel: 1).count == sent)

        h.openChannel(1)
        let frames = try Self.frames(h)
        #expect(frames.count == sent + 1 && frames.last?.header.messageType == .negotiate)
        guest.answerNew(h)
        guest.answerNew(h)
        #expect(Self.infoLines(h).last == "heartbeat: guest health no contact -> ok: heartbeat 1 answered")
        #expect(h.host.logLines.filter { $0.contains("negotiated framework 3.0") }.count == 2)
    }

    @Test func aFullRingSkipsTheHeartbeatInsteadOfWaiting() throws {
        var guest = LinuxICGuest()
        let h = try Self.negotiated(["lost_after": .int(2)], guest: &guest)
        guest.answerNew(h)
        h.limitRoom(0, channel: 1)
        h.advance(nanoseconds: 4 * Self.second)
        #expect(h.host.logLines.contains("heartbeat: heartbeat 1 missed: not sent: the guest's ring is full"))
        #expect(Self.infoLines(h).last?.hasPrefix("heartbeat: guest health ok -> lost: 2 heartbeats") == true)
        h.limitRoom(nil, channel: 1)
        h.advance(nanoseconds: 2 * Self.second)
        guest.answerNew(h)
        #expect(Self.infoLines(h).last == "heartbeat: guest health lost -> ok: heartbeat 3 answered")
    }

    @Test func aFloodOfJunkIsDrainedInBatchesThroughPostedWork() throws {
        var guest = LinuxICGuest()
        let h = try Self.negotiated(guest: &guest)
        let junk = (0..<300).map { FakeHost.Packet(transactionID: UInt64(1000 + $0), payload: [UInt8](repeating: UInt8($0 & 0xff), count: $0 % 90)) }
        h.send(junk, channel: 1)
        #expect(h.host.logLines.filter { $0.contains("answering no request") }.count == 64, "one batch per callback")
        h.runPostedWork()
        #expect(h.host.logLines.filter { $0.contains("answering no request") }.count == 300)
        guest.answerNew(h)
        #expect(Self.infoLines(h) == ["heartbeat: guest health no contact -> ok: heartbeat 0 answered"])
    }

    @Test func parametersAreRangeChecked() {
        for bad: [String: ParameterInput] in [["interval_ms": .int(99)], ["interval_ms": .int(60_001)], ["lost_after": .int(0)], ["lost_after": .int(101)]] {
            #expect(throws: (any Error).self) { try PluginHarness(plugin: "heartbeat", parameters: bad) }
        }
    }

    @Test func stateRoundTripsMidTransactionAndResetIsPowerOn() throws {
        var guest = LinuxICGuest()
        let h = try Self.negotiated(guest: &guest)
        let saved = try h.save()   // heartbeat 0 outstanding
        try h.load(saved)
        #expect(try h.save() == saved)
        guest.answerNew(h)         // the loaded state still expects seq 0 + 1
        #expect(Self.infoLines(h).last == "heartbeat: guest health no contact -> ok: heartbeat 0 answered")
        #expect(throws: (any Error).self) { try h.load(Array(saved.dropLast())) }
        #expect(throws: (any Error).self) { try h.load(saved + [0]) }
        #expect(throws: (any Error).self) { try h.load(saved, version: 2) }

        try h.reset()
        #expect(h.host.armedTimers.isEmpty)
        let fresh = try PluginHarness(plugin: "heartbeat")
        #expect(try h.save() == (try fresh.save()), "reset gives the power-on state")
    }
}
