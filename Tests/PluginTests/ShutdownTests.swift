import ICProtocol
import Testing
import VeneerHarness
import VeneerHost

@Suite("shutdown")
struct ShutdownTests {
    static let second: UInt64 = 1_000_000_000
    static let linuxVersions = [ICVersion(3, 2), ICVersion(3, 1), ICVersion(3, 0), ICVersion(1, 0)]
    /// The management request with every member left to the instance's parameters.
    static let request = #"{"op":"shutdown"}"#

    static func frames(_ h: PluginHarness) throws -> [ICFrame] {
        try h.host.packetsFromDevice(channel: 1).map { try ICFrame.decode($0.payload) }
    }

    static func negotiated(_ parameters: [String: ParameterInput] = [:], guest: inout LinuxICGuest) throws -> PluginHarness {
        let h = try PluginHarness(plugin: "shutdown", parameters: parameters)
        h.openChannel(1)
        guest.answerNew(h)
        return h
    }

    static func outcomes(_ h: PluginHarness) -> [String] { h.host.logLines.filter { $0.hasPrefix("shutdown: the guest ") } }

    @Test func offersTheShutdownChannelWithHyperVsGUIDs() throws {
        let h = try PluginHarness(plugin: "shutdown")
        let offer = try #require(h.host.offers[1])
        #expect(offer.interfaceType == [0x31, 0x60, 0x0b, 0x0e, 0x13, 0x52, 0x34, 0x49, 0x81, 0x8b, 0x38, 0xd9, 0x0c, 0xed, 0x39, 0xdb])
        #expect(offer.interfaceInstance == [0xf7, 0x0f, 0x65, 0xb6, 0xbc, 0x33, 0x40, 0x48, 0x80, 0x48, 0xe0, 0x67, 0x67, 0x86, 0xf3, 0x93])
        #expect(offer.channelFlags == 0x11 && offer.userDefined == [4, 0, 0, 0])
    }

    @Test func negotiates32AndTheGuestAnswersAShutdownBeforePoweringOff() throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(["message": .string("Host maintenance ✓")], guest: &guest)
        let offered = try NegotiateMessage.decode(try #require(try Self.frames(h).first).body[...])
        #expect(offered.messageVersions == [ICVersion(1, 0), ICVersion(3, 0), ICVersion(3, 1), ICVersion(3, 2)])
        #expect(h.host.logLines.contains("shutdown IC: negotiated framework 3.0, shutdown 3.2"))
        #expect(h.host.packetsFromDevice(channel: 1).count == 1, "nothing is sent without a request")

        h.sendControl(Self.request)
        let request = try #require(try Self.frames(h).last)
        #expect(request.header.messageType == .shutdown && request.header.messageVersion == ICVersion(3, 2))
        #expect(request.header.flags == .hostRequest && request.header.messageSize == 2060)
        let body = try ShutdownMessage.decode(request.body[...])
        #expect(body.flags == [] && body.reasonCode == 0x8000_0000 && body.timeoutSeconds == 0)
        #expect(String(decoding: body.displayMessage, as: UTF16.self) == "Host maintenance ✓")
        #expect(h.host.logLines.contains("shutdown: asked the guest to shutdown with reason 0x80000000"))

        guest.answerNew(h)
        #expect(guest.actions == ["poweroff"])
        #expect(Self.outcomes(h) == ["shutdown: the guest accepted the shutdown request"])
        h.closeChannel(1)   // what Linux's poweroff does to the channel: expected, not an error
        #expect(h.host.errors.isEmpty)
    }

    @Test(arguments: [
        (action: "restart", force: true, flags: UInt32(3), linux: ["reboot"], outcome: "accepted the restart request"),
        (action: "restart", force: false, flags: UInt32(2), linux: ["reboot"], outcome: "accepted the restart request"),
        (action: "shutdown", force: true, flags: UInt32(1), linux: ["poweroff"], outcome: "accepted the shutdown request"),
        (action: "hibernate", force: false, flags: UInt32(4), linux: [], outcome: "refused the hibernate request (status 0x80004005)"),
    ])
    func eachActionReachesTheGuestWithItsFlags(action: String, force: Bool, flags: UInt32, linux: [String], outcome: String) throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(["action": .string(action), "force": .bool(force), "reason": .int(0x8002_0003)], guest: &guest)
        h.sendControl(Self.request)
        let body = try ShutdownMessage.decode(try #require(try Self.frames(h).last).body[...])
        #expect(body.flags.rawValue == flags && body.reasonCode == 0x8002_0003)
        guest.answerNew(h)
        #expect(guest.actions == linux)
        #expect(Self.outcomes(h) == ["shutdown: the guest \(outcome)"])
    }

    @Test func hibernateIsAcceptedByAGuestWithS4() throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        guest.hibernationSupported = true
        let h = try Self.negotiated(["action": .string("hibernate")], guest: &guest)
        h.sendControl(Self.request)
        guest.answerNew(h)
        #expect(guest.actions == ["hibernate"])
        #expect(Self.outcomes(h) == ["shutdown: the guest accepted the hibernate request"])
    }

    @Test func aRequestBeforeTheGuestIsReadyIsNotNow() throws {
        let h = try PluginHarness(plugin: "shutdown")
        let closed = try #require(h.control(Self.request))
        #expect(closed.kind == .notNow && closed.text.contains("(channel closed)"), "\(closed)")
        h.openChannel(1)
        let negotiating = try #require(h.control(Self.request))
        #expect(negotiating.kind == .notNow && negotiating.text.contains("(channel negotiating)"), "\(negotiating)")
        #expect(h.host.packetsFromDevice(channel: 1).count == 1)
    }

    @Test func noAnswerTimesOutAndASecondRequestMeanwhileIsBusy() throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(["timeout_ms": .int(2000)], guest: &guest)
        let first = h.sendControl(Self.request)
        guest.ignoreNew(h)
        let busy = try #require(h.control(Self.request))
        #expect(busy == ControlOutcome(kind: .notNow, text: "a shutdown request is still waiting for the guest's answer"))
        #expect(h.host.packetsFromDevice(channel: 1).count == 2)
        #expect(h.controlAnswer(first) == nil)
        h.advance(nanoseconds: 2 * Self.second)
        #expect(Self.outcomes(h) == ["shutdown: the guest did not answer the shutdown request: no answer within 2000 ms"])
        #expect(h.controlAnswer(first) == ControlOutcome(kind: .failed, text: "the guest did not answer the shutdown request: no answer within 2000 ms"))
        // A late answer is dropped; the next request goes out.
        let unanswered = try #require(h.host.packetsFromDevice(channel: 1).last)
        let late = try guest.requiredAnswer(unanswered)
        h.send([late], channel: 1)
        #expect(h.host.logLines.contains { $0.contains("dropped a late answer") })
        h.sendControl(Self.request)
        guest.answerNew(h)
        #expect(Self.outcomes(h).last == "shutdown: the guest accepted the shutdown request")
    }

    @Test func shortAndMismatchedAnswersAreNotTakenForAcceptance() throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(guest: &guest)
        h.sendControl(Self.request)
        let request = try #require(h.host.packetsFromDevice(channel: 1).last)
        guest.ignoreNew(h)
        var reply = try guest.requiredAnswer(request)
        // Another packet id: ignored. Then the right id with another IC transaction id: unusable.
        h.send([FakeHost.Packet(transactionID: request.transactionID + 40, payload: reply.payload)], channel: 1)
        #expect(Self.outcomes(h).isEmpty)
        reply.payload[24] &+= 1
        h.send([reply], channel: 1)
        #expect(Self.outcomes(h).last?.contains("ictransaction_id") == true)
        // A short answer (the header cut off) is unusable too.
        h.sendControl(Self.request)
        let second = try #require(h.host.packetsFromDevice(channel: 1).last)
        guest.ignoreNew(h)
        h.send([FakeHost.Packet(transactionID: second.transactionID, payload: [0, 0, 0, 0, 5])], channel: 1)
        #expect(Self.outcomes(h).last?.contains("did not answer the shutdown request") == true)
        #expect(Self.outcomes(h).allSatisfy { !$0.contains("accepted") })
    }

    @Test func aGuestWithoutACommonVersionGetsNoRequests() throws {
        var guest = LinuxICGuest(messageVersions: [ICVersion(2, 0)])
        let h = try Self.negotiated(guest: &guest)
        #expect(h.host.logLines.contains { $0.contains("version negotiation failed") })
        let refused = try #require(h.control(Self.request))
        #expect(refused.kind == .notNow && refused.text.contains("(channel failed:"), "\(refused)")
        #expect(h.host.packetsFromDevice(channel: 1).count == 1)
    }

    @Test func aMessageTooLongForTheBodyFailsCreate() {
        let long = String(repeating: "x", count: 1025)
        #expect(throws: (any Error).self) { try PluginHarness(plugin: "shutdown", parameters: ["message": .string(long)]) }
        #expect(throws: Never.self) { try PluginHarness(plugin: "shutdown", parameters: ["message": .string(String(repeating: "x", count: 1024))]) }
    }

    // MARK: management requests

    @Test func aShutdownRequestIsAnsweredOnceTheGuestAccepted() throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(guest: &guest)
        let id = h.sendControl(#"{"op":"shutdown","action":"restart","force":true,"reason":"patching","reasonCode":7}"#)
        #expect(h.controlAnswer(id) == nil, "answered only after the guest")
        let body = try ShutdownMessage.decode(try #require(try Self.frames(h).last).body[...])
        #expect(body.flags.rawValue == 3 && body.reasonCode == 7)
        #expect(String(decoding: body.displayMessage, as: UTF16.self) == "patching")
        guest.answerNew(h)
        #expect(guest.actions == ["reboot"])
        #expect(h.controlAnswer(id) == ControlOutcome(kind: .success, text: "{}"))
        #expect(h.metric("shutdown_requests_total") == 1 && h.metric("shutdown_accepted_total") == 1)
        #expect(h.repeatedControlAnswers == 0 && h.pendingControlRequests.isEmpty)
    }

    @Test func aRefusedRequestFailsWithTheGuestsStatus() throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(guest: &guest)
        let id = h.sendControl(#"{"op":"shutdown","action":"hibernate"}"#)
        guest.answerNew(h)
        #expect(h.controlAnswer(id) == ControlOutcome(kind: .failed, text: "the guest refused the hibernate request (status 0x80004005)"))
        #expect(h.metric("shutdown_refused_total") == 1)
    }

    @Test func theGuestClosingTheChannelFailsAWaitingRequest() throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(guest: &guest)
        let id = h.sendControl(Self.request)
        h.closeChannel(1)
        #expect(h.controlAnswer(id) == ControlOutcome(kind: .failed, text: "the guest closed the shutdown channel without answering"))
    }

    @Test(arguments: [
        (#"{"op":"shutdown","action":"explode"}"#, ControlOutcome.Kind.invalid, "member 'action': 'explode' is not shutdown, restart or hibernate"),
        (#"{"op":"shutdown","force":"yes"}"#, .invalid, "member 'force'"),
        (#"{"op":"shutdown","reasonCode":-1}"#, .invalid, "request 'shutdown'"),
        (#"{"op":"reboot"}"#, .unsupported, "shutdown takes no op 'reboot' (it takes shutdown)"),
        (#"["op","shutdown"]"#, .invalid, "a request is a JSON object"),
        ("not json", .invalid, "a request is a JSON object"),
    ])
    func malformedAndUnknownRequestsAreRefusedAtOnce(json: String, kind: ControlOutcome.Kind, text: String) throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(guest: &guest)
        let answer = try #require(h.control(json))
        #expect(answer.kind == kind && answer.text.contains(text), "\(answer)")
        #expect(h.host.packetsFromDevice(channel: 1).count == 1, "nothing sent")
    }

    @Test func aMessageLongerThanTheBodyIsInvalid() throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(guest: &guest)
        let long = String(repeating: "x", count: 1025)
        let answer = try #require(h.control(#"{"op":"shutdown","reason":"\#(long)"}"#))
        #expect(answer.kind == .invalid && answer.text.contains("1025 UTF-16 code units"), "\(answer)")
    }

    @Test func stateRoundTripsAnOutstandingRequest() throws {
        var guest = LinuxICGuest(messageVersions: Self.linuxVersions)
        let h = try Self.negotiated(guest: &guest)
        h.sendControl(Self.request)
        guest.ignoreNew(h)
        let state = try h.save()
        try h.device.stop()
        try h.load(state)
        try h.device.start()
        #expect(try h.save() == state)
        guest.seen -= 1
        guest.answerNew(h)   // the answer to the request outstanding when saved
        #expect(Self.outcomes(h) == ["shutdown: the guest accepted the shutdown request"])
    }
}
