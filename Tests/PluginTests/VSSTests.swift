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

/// A "freeze", "thaw" or "check" result.
struct VSSAnswer: Decodable, Equatable {
    var state: String
    var lastOutcome: String?
}

@Suite("vss")
struct VSSTests {
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

    @Test func freezeIsAnsweredOnceFrozenAndThawOnceCompleted() throws {
        var guest = LinuxVSSGuest()
        let h = try Self.ready(&guest)
        let freeze = h.sendControl(#"{"op":"freeze"}"#)
        #expect(h.controlAnswer(freeze) == nil)
        guest.answerAll(h)
        #expect(guest.operations == ["GET_DM_INFO", "HOT_BACKUP", "FREEZE"] && guest.frozen)
        #expect(h.controlAnswer(freeze)?.decoded(VSSAnswer.self) == VSSAnswer(state: "frozen", lastOutcome: nil))
        #expect(h.control(#"{"op":"check"}"#)?.decoded(VSSAnswer.self) == VSSAnswer(state: "frozen", lastOutcome: nil))
        #expect(h.metric("vss_frozen") == 1 && h.metric("vss_freezes_total") == 1)
        let thaw = h.sendControl(#"{"op":"thaw"}"#)
        guest.answerAll(h)
        #expect(guest.operations == ["GET_DM_INFO", "HOT_BACKUP", "FREEZE", "THAW", "BU_COMPLETE"])
        #expect(!guest.frozen)
        #expect(h.controlAnswer(thaw)?.decoded(VSSAnswer.self) == VSSAnswer(state: "thawed", lastOutcome: "backup complete"))
        #expect(Self.vssLines(h).suffix(2) == ["VSS: the guest's file systems are frozen", "VSS: backup complete"])
        #expect(h.metric("vss_frozen") == 0 && h.metric("vss_failed_backups_total") == 0)
        #expect(h.repeatedControlAnswers == 0 && h.pendingControlRequests.isEmpty)
    }

    @Test func withoutItsDaemonTheGuestRefusesAndNothingIsFrozen() throws {
        var guest = LinuxVSSGuest()
        guest.daemonRunning = false
        let h = try Self.ready(&guest)
        let freeze = h.sendControl(#"{"op":"freeze"}"#)
        guest.answerAll(h)
        #expect(guest.operations == ["GET_DM_INFO", "HOT_BACKUP"])
        let reason = "the guest cannot take a backup (HOT_BACKUP status 0x80004005; Linux answers so without hv_vss_daemon)"
        #expect(Self.vssLines(h).last == "VSS: backup failed: \(reason)")
        #expect(h.controlAnswer(freeze) == ControlOutcome(kind: .failed, text: "the guest did not freeze: \(reason)"))
        #expect(h.metric("vss_failed_backups_total") == 1)
    }

    @Test func aFailedFreezeIsUndoneWithAThaw() throws {
        var guest = LinuxVSSGuest()
        guest.freezeWorks = false
        let h = try Self.ready(&guest)
        let freeze = h.sendControl(#"{"op":"freeze"}"#)
        guest.answerAll(h)
        #expect(guest.operations == ["GET_DM_INFO", "HOT_BACKUP", "FREEZE", "THAW", "BU_COMPLETE"])
        #expect(Self.vssLines(h).last == "VSS: backup failed: the guest did not freeze (status 0x80004005)")
        #expect(!Self.vssLines(h).contains("VSS: the guest's file systems are frozen"))
        #expect(h.controlAnswer(freeze)?.kind == .failed)
    }

    @Test func anUnansweredFreezeTimesOutAndIsThawed() throws {
        var guest = LinuxVSSGuest()
        let h = try Self.ready(&guest, ["freeze_timeout_ms": .int(2000)])
        let freeze = h.sendControl(#"{"op":"freeze"}"#)
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
        #expect(h.controlAnswer(freeze) == ControlOutcome(kind: .failed, text: "the guest did not freeze: FREEZE: no answer within 2000 ms"))
    }

    @Test func aGuestFrozenTooLongIsThawedByThePlugin() throws {
        var guest = LinuxVSSGuest()
        let h = try Self.ready(&guest, ["max_frozen_ms": .int(1000)])
        h.sendControl(#"{"op":"freeze"}"#)
        guest.answerAll(h)
        #expect(guest.frozen)
        h.advance(nanoseconds: Self.second)
        guest.answerAll(h)
        #expect(!guest.frozen && guest.operations.suffix(2) == ["THAW", "BU_COMPLETE"])
        #expect(h.control(#"{"op":"thaw"}"#)?.kind == .notNow)
    }

    @Test func aSecondFreezeWhileOneRunsIsNotNow() throws {
        var guest = LinuxVSSGuest()
        let h = try Self.ready(&guest)
        let first = h.sendControl(#"{"op":"freeze"}"#)
        #expect(h.control(#"{"op":"freeze"}"#) == ControlOutcome(kind: .notNow, text: "a backup step is in progress (checking)"))
        guest.answerAll(h)
        #expect(h.controlAnswer(first)?.isSuccess == true)
        #expect(h.control(#"{"op":"freeze"}"#)?.kind == .notNow, "already frozen")
    }

    @Test func requestsBeforeTheGuestConnectsAndUnknownOnes() throws {
        let h = try PluginHarness(plugin: "vss")
        #expect(h.control(#"{"op":"check"}"#)?.decoded(VSSAnswer.self) == VSSAnswer(state: "not-connected", lastOutcome: nil))
        #expect(h.control(#"{"op":"freeze"}"#)?.kind == .notNow)
        #expect(h.control(#"{"op":"thaw"}"#)?.kind == .notNow)
        #expect(h.control(#"{"op":"snapshot"}"#)?.kind == .unsupported)
        #expect(h.control(#"{"operation":"freeze"}"#)?.kind == .invalid)
        var guest = LinuxVSSGuest()
        let ready = try Self.ready(&guest)
        #expect(ready.control(#"{"op":"thaw"}"#) == ControlOutcome(kind: .notNow, text: "the guest is not frozen (the backup is idle)"))
    }

    @Test func aGuestClosingTheChannelEndsTheBackup() throws {
        var guest = LinuxVSSGuest()
        let h = try Self.ready(&guest)
        let freeze = h.sendControl(#"{"op":"freeze"}"#)
        h.closeChannel(1)
        #expect(Self.vssLines(h).last == "VSS: backup failed: the guest closed the channel during the backup")
        #expect(h.controlAnswer(freeze) == ControlOutcome(kind: .failed, text: "the guest did not freeze: the guest closed the channel"))
        let again = try #require(h.control(#"{"op":"freeze"}"#))
        #expect(again.kind == .notNow && again.text.contains("channel closed"), "\(again)")
    }

    @Test func stateRoundTrips() throws {
        var guest = LinuxVSSGuest()
        let h = try Self.ready(&guest)
        h.sendControl(#"{"op":"freeze"}"#)
        let saved = try h.save()
        try h.load(saved)
        #expect(try h.save() == saved)
        var bad = saved
        bad[0] = 9
        #expect(throws: (any Error).self) { try h.load(bad) }
    }
}
