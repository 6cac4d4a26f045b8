import Glibc
import ICProtocol
import Testing
import VeneerHarness
import VeneerHost

@Suite("timesync")
struct TimeSyncTests {
    static let second: UInt64 = 1_000_000_000
    static let linuxVersions = [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)]

    static func frames(_ h: PluginHarness) throws -> [ICFrame] {
        try h.host.packetsFromDevice(channel: 1).map { try ICFrame.decode($0.payload) }
    }

    /// The host's CLOCK_REALTIME as FILETIME, to bracket what the device read.
    static func fileTimeNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return FileTime.fromUnix(nanoseconds: UInt64(ts.tv_sec) * second + UInt64(ts.tv_nsec))
    }

    static func negotiated(_ parameters: [String: ParameterInput] = [:], guest: inout LinuxICGuest) throws -> PluginHarness {
        let h = try PluginHarness(plugin: "timesync", parameters: parameters)
        h.host.referenceTime = 0x1234_5678
        h.openChannel(1)
        guest.answerNew(h)
        return h
    }

    @Test func offersTheTimeSyncChannelWithHyperVsGUIDs() throws {
        let h = try PluginHarness(plugin: "timesync")
        let offer = try #require(h.host.offers[1])
        #expect(offer.interfaceType == [0x30, 0xe6, 0x27, 0x95, 0xae, 0xd0, 0x7b, 0x49, 0xad, 0xce, 0xe8, 0x0a, 0xb0, 0x17, 0x5c, 0xaf])
        #expect(offer.interfaceInstance == [0x17, 0xce, 0xd1, 0x2d, 0x9e, 0x07, 0x3c, 0x40, 0xb3, 0x52, 0xa1, 0x92, 0x1e, 0xe2, 0x07, 0xee])
        #expect(offer.channelFlags == 0x11 && offer.userDefined == [4, 0, 0, 0])
        #expect(h.host.packetsFromDevice(channel: 1).isEmpty)
    }

    @Test func negotiates40ThenSyncsAtOnceWithThePartitionReferenceTime() throws {
        let h = try PluginHarness(plugin: "timesync")
        h.openChannel(1)
        let offered = try NegotiateMessage.decode(try #require(try Self.frames(h).first).body[...])
        #expect(offered.messageVersions == [ICVersion(1, 0), ICVersion(3, 0), ICVersion(4, 0)])

        h.host.referenceTime = 987_654_321
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let before = Self.fileTimeNow()
        guest.answerNew(h)   // negotiation answered: the SYNC follows in the same callback
        let after = Self.fileTimeNow()
        #expect(h.host.logLines.contains("timesync IC: negotiated framework 3.0, timesync 4.0"))
        let sync = try #require(try Self.frames(h).last)
        #expect(sync.header.messageType == .timeSync && sync.header.messageVersion == ICVersion(4, 0))
        #expect(sync.header.flags == .hostRequest && sync.header.messageSize == 22)
        let message = try TimeSyncMessage.decode(sync.body[...], version: ICVersion(4, 0))
        #expect(message.flags == .sync)
        #expect(message.referenceTime == 987_654_321, "the core's reference counter, not a clock of the plugin's own")
        #expect(before <= message.parentTime && message.parentTime <= after, "host CLOCK_REALTIME as FILETIME")

        // Linux takes it; then a SAMPLE every interval (default 5 s), each with the counter of its moment.
        guest.answerNew(h)
        #expect(guest.timeSamples.count == 1 && guest.timeSamples[0].reference == 987_654_321 && guest.timeSamples[0].flags == 1)
        #expect(h.host.armedTimers[1]?.period == 5 * Self.second)
        for n in 1...3 {
            h.host.referenceTime = 987_654_321 + UInt64(n) * 50_000_000
            h.advance(nanoseconds: 5 * Self.second)
            guest.answerNew(h)
            #expect(guest.timeSamples.count == n + 1)
            #expect(guest.timeSamples[n].flags == 2 && guest.timeSamples[n].reference == h.host.referenceTime)
        }
    }

    @Test func aGuestWithout40GetsTheOlderLayoutThatLinuxAccepts() throws {
        var guest = LinuxICGuest(messageVersions: [ICVersion(3, 0), ICVersion(1, 0)])
        let h = try Self.negotiated(guest: &guest)
        let sync = try #require(try Self.frames(h).last)
        #expect(sync.header.messageVersion == ICVersion(3, 0) && sync.header.messageSize == 25)
        guest.answerNew(h)
        #expect(guest.timeSamples.count == 1 && guest.timeSamples[0].reference == nil && guest.timeSamples[0].flags == 1)
    }

    @Test func resumeAndRestoreSendASyncAgain() throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(guest: &guest)
        guest.answerNew(h)
        try h.device.stop()
        try h.device.start()
        guest.answerNew(h)
        #expect(guest.timeSamples.map(\.flags) == [1, 1], "a SYNC after resume")

        let state = try h.save()
        try h.device.stop()
        try h.load(state)
        try h.device.start()
        guest.answerNew(h)
        #expect(guest.timeSamples.map(\.flags) == [1, 1, 1], "a SYNC after restore")
        h.advance(nanoseconds: 5 * Self.second)
        guest.answerNew(h)
        #expect(guest.timeSamples.map(\.flags) == [1, 1, 1, 2])
    }

    @Test func aGuestThatNeverAnswersDoesNotStopTheSamples() throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(guest: &guest)
        guest.ignoreNew(h)   // the SYNC is never answered
        h.advance(nanoseconds: 5 * Self.second)   // it times out at 3.75 s, the SAMPLE goes at 5 s
        #expect(h.host.logLines.contains { $0.contains("not answered within 3750 ms") })
        let frames = try Self.frames(h)
        #expect(frames.count == 3)
        #expect(try TimeSyncMessage.decode(frames[2].body[...], version: ICVersion(4, 0)).flags == .sample)
    }

    @Test func wrongIdsShortAnswersAndFailureStatusesAreCountedNotTrusted() throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(guest: &guest)
        let sync = try #require(h.host.packetsFromDevice(channel: 1).last)
        guest.ignoreNew(h)
        var reply = try guest.requiredAnswer(sync)
        // A packet id the host never used, then a short packet: ignored, the SYNC stays outstanding.
        h.send([FakeHost.Packet(transactionID: 77, payload: reply.payload), FakeHost.Packet(transactionID: sync.transactionID, payload: [1, 2])], channel: 1)
        #expect(h.host.logLines.contains { $0.contains("ignored a packet answering no request (id 77") })
        #expect(h.host.logLines.contains { $0.contains("unusable answer") && $0.contains("needs") })
        // The SYNC was ended by the short answer: a wrong IC transaction id on the next message is rejected too.
        h.advance(nanoseconds: 5 * Self.second)
        let sample = try #require(h.host.packetsFromDevice(channel: 1).last)
        guest.ignoreNew(h)
        reply = try guest.requiredAnswer(sample)
        reply.payload[24] &+= 1
        h.send([reply], channel: 1)
        #expect(h.host.logLines.contains { $0.contains("unusable answer") && $0.contains("ictransaction_id") })
        // A failure status is noted; samples go on.
        h.advance(nanoseconds: 5 * Self.second)
        let next = try #require(h.host.packetsFromDevice(channel: 1).last)
        guest.ignoreNew(h)
        reply = try guest.requiredAnswer(next)
        for (i, b) in LinuxICGuest.failStatus.enumerated() { reply.payload[20 + i] = b }
        h.send([reply], channel: 1)
        #expect(h.host.logLines.contains { $0.contains("status 0x80004005") })
        h.advance(nanoseconds: 5 * Self.second)
        guest.answerNew(h)
        #expect(guest.timeSamples.last?.flags == 2)
    }

    @Test func badVersionsLeaveTheChannelIdle() throws {
        var guest = LinuxICGuest(messageVersions: [ICVersion(5, 0)])   // nothing in common: counts 0/0
        let h = try Self.negotiated(guest: &guest)
        #expect(h.host.logLines.contains { $0.contains("version negotiation failed") && $0.contains("0/0") })
        h.advance(nanoseconds: 20 * Self.second)
        #expect(h.host.packetsFromDevice(channel: 1).count == 1, "only the negotiate request")
    }

    @Test func withoutReferenceTimeNothingIsSentRatherThanAnotherClock() throws {
        let h = try PluginHarness(plugin: "timesync")
        h.host.referenceTime = nil
        h.openChannel(1)
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        guest.answerNew(h)
        #expect(h.host.logLines.contains { $0.contains("no partition reference time") })
        #expect(h.host.packetsFromDevice(channel: 1).count == 1)
        h.host.referenceTime = 42
        h.advance(nanoseconds: 5 * Self.second)
        guest.answerNew(h)
        #expect(guest.timeSamples.map(\.reference) == [42] && guest.timeSamples.map(\.flags) == [1], "the SYNC still due goes first")
    }

    @Test func intervalIsChecked() {
        #expect(throws: (any Error).self) { try PluginHarness(plugin: "timesync", parameters: ["interval_ms": .int(999)]) }
        // Linux's PTP clock calls a sample older than 600 s stale: the interval stays well below.
        #expect(throws: (any Error).self) { try PluginHarness(plugin: "timesync", parameters: ["interval_ms": .int(300_001)]) }
        #expect(throws: Never.self) { try PluginHarness(plugin: "timesync", parameters: ["interval_ms": .int(300_000)]) }
    }
}
