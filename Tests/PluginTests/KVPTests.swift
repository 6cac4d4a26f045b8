import ICProtocol
import Testing
import VeneerHarness
import VeneerHost

/// Linux's KVP guest side as hv_utils (drivers/hv/hv_kvp.c) and hv_kvp_daemon behave: until the
/// daemon registers, every KVP request is answered at once with HV_E_FAIL; the daemon stores what
/// the host sets in its pool files, answers a DELETE of a missing key and a GET of one with
/// HV_E_FAIL, enumerates the auto pool through a fixed index → key table and other pools in file
/// order, and answers HV_S_CONT past the end. Every answer is the request's buffer with its status
/// and flags rewritten, values always as REG_SZ.
struct LinuxKVPGuest {
    var ic = LinuxICGuest(messageVersions: [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)])
    var daemonRunning = true
    /// The daemon's pool files, pool number → (key, value) in file order.
    var pools: [UInt8: [(key: String, value: String)]] = [:]
    /// Keys whose SET the daemon fails (a full disk, say).
    var failingKeys: Set<String> = []
    /// The auto pool as the daemon builds it, index by index.
    var autoPool: [(String, String)] = [
        ("FullyQualifiedDomainName", "guest.example.org"), ("IntegrationServicesVersion", "6.12.0"),
        ("NetworkAddressIPv4", "10.0.0.5"), ("NetworkAddressIPv6", "fe80::1"), ("OSBuildNumber", "6.12.0-veneer"),
        ("OSName", "Linux"), ("OSMajorVersion", "6"), ("OSMinorVersion", "12"), ("OSVersion", "#1 SMP"),
        ("ProcessorArchitecture", "x86_64"),
    ]
    var seen = 0
    /// KVP operations the guest answered, as "OP pool" (negotiation not included).
    var operations: [String] = []

    static let fail: UInt32 = 0x8000_4005, noMore: UInt32 = 0x8007_0103

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * $1) } }
    static func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) { for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    static func text(_ b: [UInt8], _ at: Int, size: UInt32, capacity: Int) -> String {
        let units = (0..<min(Int(size), capacity) / 2).map { UInt16(b[at + 2 * $0]) | UInt16(b[at + 2 * $0 + 1]) << 8 }
        return String(decoding: units.prefix { $0 != 0 }, as: UTF16.self)
    }
    /// Writes a REG_SZ pair into the value struct at `at`, as kvp_respond_to_host does.
    static func putPair(_ b: inout [UInt8], _ at: Int, key: String?, value: String) {
        put32(&b, at, 1)
        if let key {
            let k = Array(key.utf16)
            put32(&b, at + 4, UInt32(2 * (k.count + 1)))
            for i in 0..<512 { b[at + 12 + i] = 0 }
            for (i, u) in k.enumerated() { b[at + 12 + 2 * i] = UInt8(u & 0xff); b[at + 13 + 2 * i] = UInt8(u >> 8) }
        }
        let v = Array(value.utf16)
        put32(&b, at + 8, UInt32(2 * (v.count + 1)))
        for i in 0..<2048 { b[at + 524 + i] = 0 }
        for (i, u) in v.enumerated() { b[at + 524 + 2 * i] = UInt8(u & 0xff); b[at + 525 + 2 * i] = UInt8(u >> 8) }
    }

    mutating func answer(_ packet: FakeHost.Packet) -> FakeHost.Packet? {
        guard packet.payload.count >= 28, LinuxICGuest.u16(packet.payload, 12) == 2 else { return ic.answer(packet) }
        var b = packet.payload
        var status: UInt32 = 0
        let op = b.count > 28 ? b[28] : 0xff, pool = b.count > 29 ? b[29] : 0xff
        operations.append("\(["GET", "SET", "DELETE", "ENUMERATE"].indices.contains(Int(op)) ? ["GET", "SET", "DELETE", "ENUMERATE"][Int(op)] : "op\(op)") \(pool)")
        if !daemonRunning {
            status = Self.fail   // "Userspace is not registered yet"
        } else {
            switch op {
            case 1 where b.count >= 32 + 2572:   // SET: value struct at 32
                let key = Self.text(b, 44, size: Self.u32(b, 36), capacity: 512)
                let value = Self.text(b, 556, size: Self.u32(b, 40), capacity: 2048)
                if failingKeys.contains(key) { status = Self.fail; break }
                var records = pools[pool] ?? []
                if let i = records.firstIndex(where: { $0.key == key }) { records[i].value = value } else { records.append((key, value)) }
                pools[pool] = records
            case 2 where b.count >= 32 + 516:    // DELETE
                let key = Self.text(b, 36, size: Self.u32(b, 32), capacity: 512)
                if let i = pools[pool]?.firstIndex(where: { $0.key == key }) { pools[pool]?.remove(at: i) } else { status = Self.fail }
            case 0 where b.count >= 32 + 2572:   // GET
                let key = Self.text(b, 44, size: Self.u32(b, 36), capacity: 512)
                if let record = pools[pool]?.first(where: { $0.key == key }) { Self.putPair(&b, 32, key: nil, value: record.value) } else { status = Self.fail }
            case 3 where b.count >= 36 + 2572:   // ENUMERATE: index at 32, value struct at 36
                let index = Int(Self.u32(b, 32))
                let records = pool == 2 ? autoPool.map { (key: $0.0, value: $0.1) } : (pools[pool] ?? [])
                if index < records.count { Self.putPair(&b, 36, key: records[index].key, value: records[index].value) } else { status = Self.noMore }
            default:
                status = Self.fail
            }
        }
        Self.put32(&b, 20, status)
        b[25] = 5
        return FakeHost.Packet(transactionID: packet.transactionID, payload: b)
    }

    /// Answers everything new, one packet per round (Linux has one transaction outstanding).
    mutating func answerAll(_ h: PluginHarness, rounds: Int = 200) {
        for _ in 0..<rounds {
            let packets = h.host.packetsFromDevice(channel: 1)
            guard seen < packets.count else { return }
            seen += 1
            if let reply = answer(packets[seen - 1]) { h.send([reply], channel: 1) }
        }
    }

    func pool(_ n: UInt8) -> [String] { (pools[n] ?? []).map { "\($0.key)=\($0.value)" } }
}

@Suite("kvp")
struct KVPTests {
    static let second: UInt64 = 1_000_000_000
    static let vmID = "6f1b3c2a-0d4e-4f5a-9b8c-7d6e5f4a3b2c"

    static func parameters(pairs: [(String, String)] = [("Environment", "production"), ("Owner", "ops team ✓")]) -> [String: ParameterInput] {
        ["pair": .group(pairs.map { ["key": .string($0.0), "value": .string($0.1)] }),
         "host_name": .string("hv1.example.org"), "vm_name": .string("web-1"), "vm_id": .string(vmID)]
    }

    static func kvpLines(_ h: PluginHarness) -> [String] { h.host.logLines.filter { $0.hasPrefix("KVP: ") } }

    @Test func offersTheKVPChannelWithHyperVsGUIDs() throws {
        let h = try PluginHarness(plugin: "kvp")
        let offer = try #require(h.host.offers[1])
        #expect(offer.interfaceType == [0xe7, 0xf4, 0xa0, 0xa9, 0x45, 0x5a, 0x96, 0x4d, 0xb8, 0x27, 0x8a, 0x84, 0x1e, 0x8c, 0x03, 0xe6])
        #expect(offer.interfaceInstance == [0x19, 0xf9, 0x2f, 0x24, 0xdb, 0x07, 0x80, 0x41, 0x9c, 0x2e, 0xb8, 0x6c, 0xb6, 0x8c, 0x8c, 0x55])
        #expect(offer.channelFlags == 0x11 && offer.userDefined == [4, 0, 0, 0])
    }

    @Test func givesTheGuestTheHostsPoolsThenReadsTheGuestsAutoAndGuestPools() throws {
        var guest = LinuxKVPGuest()
        guest.pools[1] = [("GuestNote", "hello host")]
        let h = try PluginHarness(plugin: "kvp", parameters: Self.parameters())
        h.openChannel(1)
        guest.answerAll(h)
        #expect(h.host.logLines.contains("KVP IC: negotiated framework 3.0, KVP 4.0"))
        #expect(guest.pool(3) == ["HostName=hv1", "PhysicalHostName=hv1", "PhysicalHostNameFullyQualified=hv1.example.org",
                                  "VirtualMachineName=web-1", "VirtualMachineId=\(Self.vmID.uppercased())"])
        #expect(guest.pool(0) == ["Environment=production", "Owner=ops team ✓"])
        // The pushes first, then the auto pool index by index until HV_S_CONT, then the guest pool.
        #expect(guest.operations == Array(repeating: "SET 3", count: 5) + ["SET 0", "SET 0"]
                + Array(repeating: "ENUMERATE 2", count: 11) + ["ENUMERATE 1", "ENUMERATE 1"])
        let lines = Self.kvpLines(h)
        #expect(lines.contains("KVP: the guest took the SET of 'VirtualMachineName' in the auto-external pool"))
        #expect(lines.contains { $0.hasPrefix("KVP: the guest's auto pool holds 10 items: FullyQualifiedDomainName=guest.example.org; IntegrationServicesVersion=6.12.0;") && $0.hasSuffix("ProcessorArchitecture=x86_64") })
        #expect(lines.contains("KVP: the guest's guest pool holds 1 items: GuestNote=hello host"))
        #expect(h.host.packetsFromDevice(channel: 1).count == 1 + 7 + 13, "nothing more once every pool is read")
        #expect(h.host.errors.isEmpty)
    }

    @Test func requestsCarryTheWireSizesAndUTF16() throws {
        var guest = LinuxKVPGuest()
        let h = try PluginHarness(plugin: "kvp", parameters: Self.parameters(pairs: [("Ключ", "значение")]))
        h.openChannel(1)
        guest.answerAll(h)
        let frames = try h.host.packetsFromDevice(channel: 1).map { try ICFrame.decode($0.payload) }
        let set = try #require(frames.first { $0.body.count > 1 && $0.body[0] == 1 && $0.body[1] == 0 })
        #expect(set.header.messageType == .kvpExchange && set.header.messageVersion == ICVersion(4, 0) && set.header.flags == .hostRequest)
        #expect(set.header.messageSize == 2576 && set.body.count == 2576)
        let message = try KVPMessage.decode(set.body[...])
        #expect(message == KVPMessage(pool: .external, body: .set(try #require(KVPExchangeValue(key: "Ключ", string: "значение")))))
        #expect(LinuxKVPGuest.u32(set.body, 4) == 1 && LinuxKVPGuest.u32(set.body, 8) == 10 && LinuxKVPGuest.u32(set.body, 12) == 18)
        let enumerate = try #require(frames.last)
        #expect(enumerate.header.messageSize == 2580 && enumerate.body[0] == 3)
    }

    @Test func waitsForALateDaemonWithoutStoppingAndThenDoesEverything() throws {
        var guest = LinuxKVPGuest()
        guest.daemonRunning = false
        let h = try PluginHarness(plugin: "kvp", parameters: Self.parameters().merging(["retry_ms": .int(2000)]) { $1 })
        h.openChannel(1)
        guest.answerAll(h)
        #expect(guest.operations == ["SET 3"], "one attempt, answered HV_E_FAIL at once")
        #expect(Self.kvpLines(h) == ["KVP: the guest's KVP daemon is not running yet (HV_E_FAIL); retrying every 2000 ms"])
        h.advance(nanoseconds: 1 * Self.second)
        guest.answerAll(h)
        #expect(guest.operations.count == 1, "no retry before retry_ms")
        for _ in 0..<3 {
            h.advance(nanoseconds: 2 * Self.second)
            guest.answerAll(h)
        }
        #expect(guest.operations == Array(repeating: "SET 3", count: 4), "the same request again every 2 s")
        #expect(Self.kvpLines(h).count == 1, "logged once")
        #expect(guest.pools.isEmpty)

        guest.daemonRunning = true   // hv_kvp_daemon registers
        h.advance(nanoseconds: 2 * Self.second)
        guest.answerAll(h)
        #expect(guest.pool(3).count == 5 && guest.pool(0).count == 2)
        #expect(Self.kvpLines(h).contains { $0.hasPrefix("KVP: the guest's auto pool holds 10 items") })
    }

    @Test func onceTheDaemonRunsAFailedSetIsThatRequestsFailureAndTheRestGoesOn() throws {
        var guest = LinuxKVPGuest()
        guest.failingKeys = ["Environment"]
        let h = try PluginHarness(plugin: "kvp", parameters: Self.parameters())
        h.openChannel(1)
        guest.answerAll(h)
        #expect(Self.kvpLines(h).contains("KVP: the guest refused the SET of 'Environment' in the external pool (status 0x80004005)"))
        #expect(guest.pool(0) == ["Owner=ops team ✓"])
        #expect(Self.kvpLines(h).contains { $0.hasPrefix("KVP: the guest's auto pool holds 10 items") })
    }

    @Test func aGuestThatDoesNotAnswerIsAskedAgainAfterTheTimeout() throws {
        var guest = LinuxKVPGuest()
        let h = try PluginHarness(plugin: "kvp", parameters: Self.parameters().merging(["timeout_ms": .int(1000), "retry_ms": .int(500)]) { $1 })
        h.openChannel(1)
        guest.answerAll(h, rounds: 1)   // negotiation only
        guest.seen = h.host.packetsFromDevice(channel: 1).count   // the first SET is lost
        h.advance(nanoseconds: 1 * Self.second)
        #expect(Self.kvpLines(h) == ["KVP: no answer to the SET of 'HostName' in the auto-external pool within 1000 ms; retrying in 500 ms"])
        h.advance(nanoseconds: Self.second / 2)
        guest.answerAll(h)
        #expect(guest.pool(3).count == 5 && guest.pool(0).count == 2)
    }

    @Test func aGuestAnsweringGarbageEndsTheEnumerationWithoutHarm() throws {
        var guest = LinuxKVPGuest()
        let h = try PluginHarness(plugin: "kvp", parameters: Self.parameters(pairs: []))
        h.openChannel(1)
        guest.answerAll(h, rounds: 6)   // negotiation and the five pushes
        // The first enumeration answer claims a key size larger than the key field.
        let packets = h.host.packetsFromDevice(channel: 1)
        let answered = guest.answer(packets[guest.seen])
        var reply = try #require(answered)
        guest.seen += 1
        LinuxKVPGuest.put32(&reply.payload, 28 + 8 + 4, 4000)
        h.send([reply], channel: 1)
        guest.answerAll(h)
        let lines = Self.kvpLines(h)
        #expect(lines.contains { $0.hasPrefix("KVP: unusable answer to the ENUMERATE of the auto pool at 0: KVP value: field key_size has invalid value 4000") })
        #expect(lines.contains("KVP: the guest's guest pool holds 0 items"), "the guest pool is still read")
        #expect(h.host.errors.isEmpty)
    }

    @Test(arguments: [
        (pairs: [(String(repeating: "k", count: 256), "v")], problem: "a KVP key of 256 UTF-16 code units is longer than 255"),
        (pairs: [("k", String(repeating: "v", count: 1024))], problem: "the value of KVP key 'k' has 1024 UTF-16 code units, more than 1023"),
        (pairs: [("", "v")], problem: "a KVP key must not be empty"),
    ])
    func configuredPairsMustFitTheWire(pairs: [(String, String)], problem: String) {
        #expect(throws: (any Error).self) { try PluginHarness(plugin: "kvp", parameters: Self.parameters(pairs: pairs)) }
        do { _ = try PluginHarness(plugin: "kvp", parameters: Self.parameters(pairs: pairs)) } catch {
            #expect("\(error)".contains(problem), "\(error)")
        }
    }

    @Test func aBadVMIDIsRefusedWithItsName() {
        do { _ = try PluginHarness(plugin: "kvp", parameters: ["vm_id": .string("not-a-guid")]); Issue.record("accepted") } catch {
            #expect("\(error)".contains("vm_id 'not-a-guid' is not a GUID"), "\(error)")
        }
    }

    @Test func stateRoundTripsMidRetryAndTheRetryResumes() throws {
        var guest = LinuxKVPGuest()
        guest.daemonRunning = false
        let h = try PluginHarness(plugin: "kvp", parameters: Self.parameters())
        h.openChannel(1)
        guest.answerAll(h)
        let saved = try h.save()
        try h.load(saved)
        #expect(try h.save() == saved)
        guest.daemonRunning = true
        h.advance(nanoseconds: 5 * Self.second)
        guest.answerAll(h)
        #expect(guest.pool(3).count == 5 && guest.pool(0).count == 2)
        var corrupt = saved
        corrupt[0] = 0xff; corrupt[1] = 0xff   // pool 0 claims 65535 pairs
        #expect(throws: (any Error).self) { try h.load(corrupt) }
    }
}
