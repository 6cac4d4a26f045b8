import ICProtocol
import Testing
import VeneerHarness
import VeneerHost

/// Linux's VSS guest side (drivers/hv/hv_snapshot.c with hv_vss_daemon): framework 3.0 and VSS 5.0
/// only; packets shorter than 28 + 12 bytes are dropped; HOT_BACKUP, FREEZE and THAW go to the
/// daemon (HV_E_FAIL without one), HOT_BACKUP's answer carries flags VSS_HBU_NO_AUTO_RECOVERY,
/// GET_DM_INFO is answered with flags 0, everything else with success.
struct LinuxVSSGuest {
    var ic = LinuxICGuest(frameworkVersions: [ICVersion(3, 0)], messageVersions: [ICVersion(5, 0)])
    var daemonRunning = true
    /// Whether the daemon's FIFREEZE succeeds.
    var freezeWorks = true
    /// Operations the guest answered, by name, and what its file systems went through.
    var operations: [String] = []
    var frozen = false
    var seen = 0

    mutating func answer(_ packet: FakeHost.Packet) -> FakeHost.Packet? {
        guard packet.payload.count >= 28, LinuxICGuest.u16(packet.payload, 12) == 5 else { return ic.answer(packet) }
        guard packet.payload.count >= 28 + 12 else { return nil }
        var b = packet.payload
        let op = b[28]
        operations.append(VSSOperation(rawValue: op).description)
        var status: UInt32 = 0
        switch op {
        case 2, 5, 6:
            if !daemonRunning { status = 0x8000_4005; break }
            if op == 2 { LinuxKVPGuest.put32(&b, 36, 5) }
            if op == 5 { if freezeWorks { frozen = true } else { status = 0x8000_4005 } }
            if op == 6 { frozen = false }
        case 3: LinuxKVPGuest.put32(&b, 36, 0)
        default: break
        }
        LinuxKVPGuest.put32(&b, 20, status)
        b[25] = 5
        return FakeHost.Packet(transactionID: packet.transactionID, payload: b)
    }

    mutating func answerAll(_ h: PluginHarness) {
        for _ in 0..<50 {
            let packets = h.host.packetsFromDevice(channel: 1)
            guard seen < packets.count else { return }
            seen += 1
            if let reply = answer(packets[seen - 1]) { h.send([reply], channel: 1) }
        }
    }
}

@Suite("vss")
struct VSSTests {
    static let backup: UInt64 = 0x5653_5342_4143_4B50
    static let second: UInt64 = 1_000_000_000
    /// The plugin's info and warning lines (its debug "sent" lines left out).
    static func vssLines(_ h: PluginHarness) -> [String] { h.host.logLines.filter { $0.hasPrefix("VSS: ") && !$0.hasPrefix("VSS: sent ") } }

    static func ready(_ guest: inout LinuxVSSGuest, _ parameters: [String: ParameterInput] = [:]) throws -> PluginHarness {
        let h = try PluginHarness(plugin: "vss", parameters: parameters)
        h.openChannel(1)
        guest.answerAll(h)
        return h
    }

    @Test func offersTheVSSInterfaceAndNegotiates50() throws {
        var guest = LinuxVSSGuest()
        let h = try Self.ready(&guest)
        let offer = try #require(h.host.offers[1])
        #expect(offer.interfaceType == [0x29, 0x2e, 0xfa, 0x35, 0x23, 0xea, 0x36, 0x42, 0x96, 0xae, 0x3a, 0x6e, 0xba, 0xcb, 0xa4, 0x40])
        #expect(offer.channelFlags == 0x11 && offer.userDefined == [4, 0, 0, 0])
        #expect(h.host.logLines.contains("VSS IC: negotiated framework 3.0, VSS 5.0"))
        #expect(guest.operations == ["GET_DM_INFO"])
        #expect(Self.vssLines(h) == ["VSS: the guest answers (GET_DM_INFO flags 0x0)"])
        let request = try ICFrame.decode(h.host.packetsFromDevice(channel: 1)[1].payload)
        #expect(request.header.messageSize == 12 && request.body.count == 12)
    }

    @Test func aBackupChecksFreezesThawsAndCompletes() throws {
        var guest = LinuxVSSGuest()
        let h = try Self.ready(&guest)
        h.device.workPosted(token: Self.backup)
        guest.answerAll(h)
        #expect(guest.operations == ["GET_DM_INFO", "HOT_BACKUP", "FREEZE", "THAW", "BU_COMPLETE"])
        #expect(!guest.frozen)
        #expect(Self.vssLines(h).suffix(2) == ["VSS: the guest's file systems are frozen", "VSS: backup complete"])
    }

    @Test func withoutItsDaemonTheGuestRefusesAndNothingIsFrozen() throws {
        var guest = LinuxVSSGuest()
        guest.daemonRunning = false
        let h = try Self.ready(&guest)
        h.device.workPosted(token: Self.backup)
        guest.answerAll(h)
        #expect(guest.operations == ["GET_DM_INFO", "HOT_BACKUP"])
        #expect(Self.vssLines(h).last == "VSS: backup failed: the guest cannot take a backup (HOT_BACKUP status 0x80004005; Linux answers so without hv_vss_daemon)")
    }

    @Test func aFailedFreezeIsUndoneWithAThaw() throws {
        var guest = LinuxVSSGuest()
        guest.freezeWorks = false
        let h = try Self.ready(&guest)
        h.device.workPosted(token: Self.backup)
        guest.answerAll(h)
        #expect(guest.operations == ["GET_DM_INFO", "HOT_BACKUP", "FREEZE", "THAW", "BU_COMPLETE"])
        #expect(Self.vssLines(h).last == "VSS: backup failed: the guest did not freeze (status 0x80004005)")
        #expect(!Self.vssLines(h).contains("VSS: the guest's file systems are frozen"))
    }

    @Test func anUnansweredFreezeTimesOutAndIsThawed() throws {
        var guest = LinuxVSSGuest()
        let h = try Self.ready(&guest, ["freeze_timeout_ms": .int(2000)])
        h.device.workPosted(token: Self.backup)
        // Answer HOT_BACKUP only; the FREEZE is lost.
        let packets = h.host.packetsFromDevice(channel: 1)
        guest.seen = packets.count
        let answered = guest.answer(packets[packets.count - 1])
        h.send([try #require(answered)], channel: 1)
        guest.seen = h.host.packetsFromDevice(channel: 1).count
        h.advance(nanoseconds: 2 * Self.second)
        guest.answerAll(h)
        #expect(guest.operations.suffix(3) == ["HOT_BACKUP", "THAW", "BU_COMPLETE"])
        #expect(Self.vssLines(h).last == "VSS: backup failed: FREEZE: no answer within 2000 ms")
    }

    @Test func aSecondBackupWhileOneRunsIsRefused() throws {
        var guest = LinuxVSSGuest()
        let h = try Self.ready(&guest)
        h.device.workPosted(token: Self.backup)
        h.device.workPosted(token: Self.backup)
        #expect(Self.vssLines(h).last == "VSS: backup not started: a backup or request is in progress")
        guest.answerAll(h)
        #expect(Self.vssLines(h).last == "VSS: backup complete")
    }

    @Test func aGuestClosingTheChannelEndsTheBackup() throws {
        var guest = LinuxVSSGuest()
        let h = try Self.ready(&guest)
        h.device.workPosted(token: Self.backup)
        h.closeChannel(1)
        #expect(Self.vssLines(h).last == "VSS: backup failed: the guest closed the channel during the backup")
        h.device.workPosted(token: Self.backup)
        #expect(Self.vssLines(h).last == "VSS: backup not started: the VSS channel is not ready (closed)")
    }

    @Test func stateRoundTrips() throws {
        var guest = LinuxVSSGuest()
        let h = try Self.ready(&guest)
        h.device.workPosted(token: Self.backup)
        let saved = try h.save()
        try h.load(saved)
        #expect(try h.save() == saved)
        var bad = saved
        bad[0] = 9
        #expect(throws: (any Error).self) { try h.load(bad) }
    }
}
