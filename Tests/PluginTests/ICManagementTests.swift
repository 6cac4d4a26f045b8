import FoundationEssentials
import Glibc
import ICProtocol
import Testing
import VeneerHarness
import VeneerHost

/// The management requests (ABI 1.8) of heartbeat, timesync, kvp and fcopy through the harness,
/// with guests that answer as Linux does: each op, what it answers before the guest connected,
/// malformed and unknown requests, and the metrics the plugins publish. (shutdown and vss have
/// theirs in ShutdownTests and VSSTests.)
@Suite("IC management")
struct ICManagementTests {
    static let second: UInt64 = 1_000_000_000

    struct HeartbeatAnswer: Decodable, Equatable {
        var state: String
        var sequence: UInt64
        var lastSeenMsAgo: UInt64?
    }

    // MARK: heartbeat

    @Test func heartbeatStatusFollowsTheGuestFromNotConnectedToOkToNoContact() throws {
        let h = try PluginHarness(plugin: "heartbeat", parameters: ["lost_after": .int(2)])
        let status = #"{"op":"status"}"#
        #expect(h.control(status)?.decoded(HeartbeatAnswer.self) == HeartbeatAnswer(state: "not-connected", sequence: 0, lastSeenMsAgo: nil))
        h.openChannel(1)
        var guest = LinuxICGuest()
        guest.answerNew(h)   // negotiated; heartbeat 0 out
        #expect(h.control(status)?.decoded(HeartbeatAnswer.self) == HeartbeatAnswer(state: "no-contact", sequence: 0, lastSeenMsAgo: nil))
        guest.answerNew(h)
        h.advance(nanoseconds: Self.second / 2)
        #expect(h.control(status)?.decoded(HeartbeatAnswer.self) == HeartbeatAnswer(state: "ok", sequence: 0, lastSeenMsAgo: 500))
        #expect(h.metric("heartbeat_answered_total") == 1 && h.metric("heartbeat_health") == 1 && h.metric("heartbeat_sequence") == 0)
        h.advance(nanoseconds: 3 * Self.second / 2)   // heartbeat 1 out, not answered
        guest.ignoreNew(h)
        h.advance(nanoseconds: 2 * Self.second)       // missed; heartbeat 2 out
        #expect(h.control(status)?.decoded(HeartbeatAnswer.self) == HeartbeatAnswer(state: "degraded", sequence: 2, lastSeenMsAgo: 4000))
        guest.ignoreNew(h)
        h.advance(nanoseconds: 2 * Self.second)       // two in a row: lost
        #expect(h.control(status)?.decoded(HeartbeatAnswer.self)?.state == "no-contact")
        #expect(h.metric("heartbeat_missed_total") == 2 && h.metric("heartbeat_health") == 2 && h.metric("heartbeat_sent_total") == 4)
        h.closeChannel(1)
        #expect(h.control(status)?.decoded(HeartbeatAnswer.self)?.state == "not-connected")
        #expect(h.metric("heartbeat_health") == 0)
    }

    @Test(arguments: [
        (#"{"op":"ping"}"#, ControlOutcome.Kind.unsupported), (#"{"op":7}"#, .invalid), ("", .invalid), ("[]", .invalid),
    ])
    func heartbeatRefusesOtherRequests(json: String, kind: ControlOutcome.Kind) throws {
        let h = try PluginHarness(plugin: "heartbeat")
        #expect(h.control(json)?.kind == kind)
    }

    // MARK: timesync

    @Test func syncSendsASyncNowAndAfterTheMessageInFlight() throws {
        var guest = LinuxICGuest(messageVersions: [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)])
        let h = try PluginHarness(plugin: "timesync")
        #expect(h.control(#"{"op":"sync"}"#)?.kind == .notNow, "before the guest connected")
        h.openChannel(1)
        guest.answerNew(h)   // negotiated: the first SYNC goes out
        #expect(guest.timeSamples.isEmpty)
        let waiting = h.sendControl(#"{"op":"sync"}"#)
        #expect(h.controlAnswer(waiting) == nil, "the first SYNC is still unanswered")
        guest.answerNew(h)
        #expect(h.controlAnswer(waiting) == ControlOutcome(kind: .success, text: "{}"))
        guest.answerNew(h)
        #expect(guest.timeSamples.map(\.flags) == [TimeSyncFlags.sync.rawValue, TimeSyncFlags.sync.rawValue])
        #expect(h.control(#"{"op":"sync"}"#) == ControlOutcome(kind: .success, text: "{}"), "nothing in flight: sent at once")
        #expect(h.metric("timesync_syncs_total") == 3)
        #expect(h.control(#"{"op":"set-time"}"#)?.kind == .unsupported)
        #expect(h.control("{}")?.kind == .invalid)
    }

    @Test func resumingFromAPauseSendsASync() throws {
        var guest = LinuxICGuest(messageVersions: [ICVersion(4, 0)])
        let h = try PluginHarness(plugin: "timesync")
        h.openChannel(1)
        guest.answerNew(h)
        guest.answerNew(h)   // the first SYNC answered
        let sent = h.host.packetsFromDevice(channel: 1).count
        h.setRunState(paused: true)
        #expect(h.host.packetsFromDevice(channel: 1).count == sent, "nothing while paused")
        h.host.referenceTime = 50_000_000   // 5 s of the guest's time later
        h.setRunState(paused: false)
        let frame = try ICFrame.decode(try #require(h.host.packetsFromDevice(channel: 1).last).payload)
        let message = try TimeSyncMessage.decode(frame.body[...], version: ICVersion(4, 0))
        #expect(message.flags == .sync && message.referenceTime == 50_000_000)
        #expect(h.metric("timesync_syncs_total") == 2)
    }

    // MARK: kvp

    struct Items: Decodable, Equatable {
        struct Item: Decodable, Equatable {
            var key: String
            var value: String
        }
        var items: [Item]
    }

    struct Value: Decodable, Equatable { var value: String }

    @Test func getListSetAndDeleteThroughManagementRequests() throws {
        var guest = LinuxKVPGuest()
        guest.pools[1] = [("GuestNote", "hello host")]
        let h = try PluginHarness(plugin: "kvp", parameters: ["host_name": .string("hv1"), "vm_name": .string("web-1")])
        #expect(h.control(#"{"op":"get","pool":"auto","key":"OSName"}"#)?.kind == .notNow, "not connected")
        #expect(h.control(#"{"op":"set","key":"Early","value":"before boot"}"#)?.isSuccess == true, "kept for the guest")
        h.openChannel(1)
        guest.answerAll(h)
        #expect(guest.pool(0) == ["Early=before boot"])
        #expect(h.control(#"{"op":"get","pool":"auto","key":"OSName"}"#)?.decoded(Value.self) == Value(value: "Linux"))
        #expect(h.control(#"{"op":"get","pool":"auto","key":"NetworkAddressIPv4"}"#)?.decoded(Value.self) == Value(value: "10.0.0.5"))
        #expect(h.control(#"{"op":"list","pool":"guest"}"#)?.decoded(Items.self) == Items(items: [.init(key: "GuestNote", value: "hello host")]))
        #expect(h.control(#"{"op":"get","pool":"auto-external","key":"VirtualMachineName"}"#)?.decoded(Value.self) == Value(value: "web-1"))

        // A read asks the guest again: a changed address is seen by the next read.
        guest.autoPool[2].1 = "10.0.0.9"
        guest.answerAll(h)
        #expect(h.control(#"{"op":"get","pool":"auto","key":"NetworkAddressIPv4"}"#)?.decoded(Value.self) == Value(value: "10.0.0.9"))

        #expect(h.control(#"{"op":"set","key":"Role","value":"web ✓"}"#) == ControlOutcome(kind: .success, text: "{}"))
        guest.answerAll(h)
        #expect(guest.pool(0) == ["Early=before boot", "Role=web ✓"])
        #expect(h.control(#"{"op":"list","pool":"external"}"#)?.decoded(Items.self)?.items.map(\.key) == ["Early", "Role"])
        #expect(h.control(#"{"op":"delete","key":"Early"}"#)?.isSuccess == true)
        guest.answerAll(h)
        #expect(guest.pool(0) == ["Role=web ✓"])
        #expect((h.metric("kvp_requests_total") ?? 0) >= 10 && h.metric("kvp_daemon_running") == 1 && (h.metric("kvp_exchanges_total") ?? 0) > 0)
        #expect(h.repeatedControlAnswers == 0)
    }

    @Test func whileTheDaemonIsLateGuestPoolsAreNotNowAndHostPoolsAnswer() throws {
        var guest = LinuxKVPGuest()
        guest.daemonRunning = false
        let h = try PluginHarness(plugin: "kvp", parameters: ["vm_name": .string("web-1")])
        h.openChannel(1)
        guest.answerAll(h)
        let early = try #require(h.control(#"{"op":"list","pool":"auto"}"#))
        #expect(early.kind == .notNow && early.text.contains("KVP daemon has not answered yet"), "\(early)")
        #expect(h.control(#"{"op":"get","pool":"auto-external","key":"VirtualMachineName"}"#)?.decoded(Value.self) == Value(value: "web-1"))
        #expect(h.metric("kvp_daemon_running") == 0)
    }

    @Test(arguments: [
        (#"{"op":"get","pool":"nowhere","key":"a"}"#, ControlOutcome.Kind.invalid, "'nowhere' is not one of auto, auto-external"),
        (#"{"op":"get","pool":"external"}"#, .invalid, "missing member 'key'"),
        (#"{"op":"get","pool":"external","key":"absent"}"#, .invalid, "the external pool has no key 'absent'"),
        (#"{"op":"set","key":"","value":"v"}"#, .invalid, "must not be empty"),
        (#"{"op":"set","key":"k"}"#, .invalid, "missing member 'value'"),
        (#"{"op":"set","pool":"guest","key":"k","value":"v"}"#, .invalid, "only the external pool"),
        (#"{"op":"set","key":"k","value":7}"#, .invalid, "member 'value'"),
        (#"{"op":"delete","key":"absent"}"#, .invalid, "has no key 'absent'"),
        (#"{"op":"list"}"#, .invalid, "missing member 'pool'"),
        (#"{"op":"enumerate","pool":"auto"}"#, .unsupported, "kvp takes no op 'enumerate'"),
        (#"{"pool":"auto"}"#, .invalid, "a request is a JSON object"),
    ])
    func kvpRefusesMalformedRequests(json: String, kind: ControlOutcome.Kind, text: String) throws {
        let h = try PluginHarness(plugin: "kvp")
        let answer = try #require(h.control(json))
        #expect(answer.kind == kind && answer.text.contains(text), "\(answer)")
    }

    @Test func aValueTooLongIsRefusedWithTheLimit() throws {
        let h = try PluginHarness(plugin: "kvp")
        let answer = try #require(h.control(#"{"op":"set","key":"k","value":"\#(String(repeating: "v", count: 1024))"}"#))
        #expect(answer.kind == .invalid && answer.text.contains("1024 UTF-16 code units, more than 1023"), "\(answer)")
    }

    // MARK: fcopy

    /// hv_fcopy_uio_daemon as far as the plugin can tell: files in memory, errors by status.
    struct FcopyGuest {
        var ic = LinuxICGuest(frameworkVersions: [ICVersion(3, 0)], messageVersions: [ICVersion(1, 1)])
        var files: [String: [UInt8]] = [:]
        var open: String?
        var seen = 0

        mutating func answerAll(_ h: PluginHarness) {
            for _ in 0..<10_000 {
                let packets = h.host.packetsFromDevice(channel: 1)
                guard seen < packets.count else { return }
                seen += 1
                let packet = packets[seen - 1]
                guard let frame = try? ICFrame.decode(packet.payload), frame.header.messageType == .fileCopy,
                      let message = try? FileCopyMessage.decode(frame.body[...]) else {
                    if let reply = ic.answer(packet) { h.send([reply], channel: 1) }
                    continue
                }
                var status = ICStatus.ok
                switch message {
                case .start(let s):
                    let path = String(decoding: s.pathName, as: UTF16.self) + "/" + String(decoding: s.fileName, as: UTF16.self)
                    if files[path] != nil && !s.flags.contains(.overwrite) { status = ICStatus.alreadyExists } else { files[path] = []; open = path }
                case .write(let offset, let data):
                    if let path = open, files[path]?.count == Int(offset) { files[path]? += data } else { status = ICStatus.fail }
                case .complete: open = nil
                case .cancel: status = ICStatus.fail
                }
                var b = packet.payload
                LinuxKVPGuest.put32(&b, 20, status)
                b[25] = 5
                h.send([FakeHost.Packet(transactionID: packet.transactionID, payload: b)], channel: 1)
            }
        }
    }

    static func sourceFile(_ bytes: [UInt8]) throws -> String {
        let path = "/tmp/veneer-fcopy-test-\(getpid())-\(bytes.count).bin"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func copyIsAnsweredWithTheBytesOnceTheGuestClosedTheFile() throws {
        let data = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let source = try Self.sourceFile(data)
        defer { unlink(source) }
        var guest = FcopyGuest()
        let h = try PluginHarness(plugin: "fcopy")
        let request = #"{"op":"copy","source":"\#(source)","destination":"/tmp/in-guest.bin"}"#
        #expect(h.control(request)?.kind == .notNow, "before the daemon connected")
        h.openChannel(1)
        guest.answerAll(h)
        let id = h.sendControl(request)
        #expect(h.controlAnswer(id) == nil)
        #expect(h.control(request) == ControlOutcome(kind: .notNow, text: "a copy is in progress"))
        guest.answerAll(h)
        #expect(h.controlAnswer(id) == ControlOutcome(kind: .success, text: #"{"bytes":20000}"#))
        #expect(guest.files["/tmp/in-guest.bin"] == data)
        #expect(h.metric("fcopy_bytes_total") == 20_000 && h.metric("fcopy_files_total") == 1)

        // Again without overwrite: the guest refuses; with it, the copy replaces the file.
        let refused = h.sendControl(request)
        guest.answerAll(h)
        #expect(h.controlAnswer(refused)?.kind == .failed)
        #expect(h.metric("fcopy_failures_total") == 1)
        let replaced = h.sendControl(#"{"op":"copy","source":"\#(source)","destination":"/tmp/in-guest.bin","overwrite":true}"#)
        guest.answerAll(h)
        #expect(h.controlAnswer(replaced)?.decoded([String: UInt64].self) == ["bytes": 20_000])
    }

    @Test(arguments: [
        (#"{"op":"copy","source":"relative.bin","destination":"/tmp/x"}"#, ControlOutcome.Kind.invalid, "not an absolute host path"),
        (#"{"op":"copy","source":"/nonexistent/veneer.bin","destination":"/tmp/x"}"#, .invalid, "member 'source': cannot open"),
        (#"{"op":"copy","source":"/tmp","destination":"/tmp/x"}"#, .invalid, "not a regular file"),
        (#"{"op":"copy","source":"/etc/hostname","destination":"tmp/x"}"#, .invalid, "member 'destination'"),
        (#"{"op":"copy","source":"/etc/hostname","destination":"/tmp/"}"#, .invalid, "member 'destination'"),
        (#"{"op":"copy","destination":"/tmp/x"}"#, .invalid, "missing member 'source'"),
        (#"{"op":"move"}"#, .unsupported, "fcopy takes no op 'move'"),
    ])
    func copyRefusesBadRequests(json: String, kind: ControlOutcome.Kind, text: String) throws {
        var guest = FcopyGuest()
        let h = try PluginHarness(plugin: "fcopy")
        h.openChannel(1)
        guest.answerAll(h)
        let answer = try #require(h.control(json))
        #expect(answer.kind == kind && answer.text.contains(text), "\(answer)")
        #expect(h.host.packetsFromDevice(channel: 1).count == 1, "nothing sent")
    }
}
