import ICProtocol
import Testing
import VeneerHarness
import VeneerHost

@Suite("fcopy")
struct FileCopyPluginTests {
    @Test func offersTheInstanceLinuxsDaemonLooksForAndNegotiates11() throws {
        let h = try PluginHarness(plugin: "fcopy")
        let offer = try #require(h.host.offers[1])
        #expect(offer.interfaceType == [0xe3, 0x4b, 0xd1, 0x34, 0xe4, 0xde, 0xc8, 0x41, 0x9a, 0xe7, 0x6b, 0x17, 0x49, 0x77, 0xc1, 0x92])
        #expect(offer.interfaceInstance == [0x08, 0x54, 0x76, 0xeb, 0x5f, 0x10, 0xb6, 0x49, 0xb4, 0xaa, 0xc1, 0x23, 0xb6, 0x4d, 0x17, 0xd4])
        #expect(offer.channelFlags == 0x11 && offer.userDefined == [4, 0, 0, 0])
        // hv_fcopy_uio_daemon: framework 3.0 and file copy 1.1, nothing else.
        var guest = LinuxICGuest(frameworkVersions: [ICVersion(3, 0)], messageVersions: [ICVersion(1, 1)])
        h.openChannel(1)
        let offered = try NegotiateMessage.decode(try ICFrame.decode(h.host.packetsFromDevice(channel: 1)[0].payload).body[...])
        #expect(offered.frameworkVersions == [ICVersion(3, 0)] && offered.messageVersions == [ICVersion(1, 1)])
        guest.answerNew(h)
        #expect(h.host.logLines.contains("file copy IC: negotiated framework 3.0, file copy 1.1"))
        #expect(h.host.packetsFromDevice(channel: 1).count == 1, "no copy starts by itself")
        #expect(h.host.errors.isEmpty)
    }

    @Test func aGuestWithoutVersion11FailsNegotiationCleanly() throws {
        let h = try PluginHarness(plugin: "fcopy")
        var guest = LinuxICGuest(frameworkVersions: [ICVersion(3, 0)], messageVersions: [ICVersion(1, 0)])
        h.openChannel(1)
        guest.answerNew(h)
        #expect(h.host.logLines.contains { $0.hasPrefix("file copy IC: version negotiation failed") })
    }

    @Test func stateRoundTrips() throws {
        let h = try PluginHarness(plugin: "fcopy")
        var guest = LinuxICGuest(frameworkVersions: [ICVersion(3, 0)], messageVersions: [ICVersion(1, 1)])
        h.openChannel(1)
        guest.answerNew(h)
        let saved = try h.save()
        try h.load(saved)
        #expect(try h.save() == saved)
    }
}
