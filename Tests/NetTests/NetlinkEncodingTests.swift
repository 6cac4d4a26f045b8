import NetlinkProtocol
import Testing

// rtnetlink as bytes: the layouts the kernel reads (sizes, offsets, padding, nesting) and the
// replies it writes, including hostile lengths.

@Suite struct NetlinkEncodingTests {
    @Test func attributeLayoutAndPadding() {
        var out: [UInt8] = []
        NetlinkAttribute.string(3, "br0").encode(into: &out)
        #expect(out == [8, 0, 3, 0, 0x62, 0x72, 0x30, 0])
        out = []
        NetlinkAttribute.u8(7, 1).encode(into: &out)
        #expect(out == [5, 0, 7, 0, 1, 0, 0, 0])  // length 5, padded to 8
        out = []
        NetlinkAttribute.nested(type: 18, [.string(1, "veth"), .u32(4, 0x0102_0304)]).encode(into: &out)
        #expect(out == [24, 0, 18, 0, 9, 0, 1, 0, 0x76, 0x65, 0x74, 0x68, 0, 0, 0, 0, 8, 0, 4, 0, 4, 3, 2, 1])
    }

    @Test func headerSizesAndOffsets() {
        #expect(InterfaceInfoHeader.size == 16 && InterfaceAddressHeader.size == 8 && BridgeVLANInfo.size == 4)
        let info = InterfaceInfoHeader(family: 7, deviceType: 0x0201, index: 0x0a0b_0c0d, flags: 0x1, change: 0xffff_ffff).encoded
        #expect(info == [7, 0, 1, 2, 0x0d, 0x0c, 0x0b, 0x0a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])
        #expect(InterfaceAddressHeader(family: 2, prefixLength: 24, flags: 0, scope: 0, index: 5).encoded == [2, 24, 0, 0, 5, 0, 0, 0])
        #expect(BridgeVLANInfo.access(10).encoded == [6, 0, 10, 0])  // PVID | UNTAGGED, vid 10
        #expect(BridgeVLANInfo.tagged(4094).encoded == [0, 0, 0xfe, 0x0f])
    }

    @Test func createBridgeRequest() throws {
        let message = RouteRequest.createBridge(name: "vsw0", alias: "veneer-switch type=private", sequence: 9)
        let bytes = message.encoded
        #expect(bytes.count % 4 == 0)
        #expect(Array(bytes[0..<4]) == le32(UInt32(bytes.count)))
        #expect(Array(bytes[4..<6]) == [16, 0])                // RTM_NEWLINK
        #expect(Array(bytes[6..<8]) == [0x05, 0x06])           // REQUEST | ACK | EXCL | CREATE
        #expect(Array(bytes[8..<12]) == [9, 0, 0, 0])
        #expect(Array(bytes[16..<32]) == [UInt8](repeating: 0, count: 16))
        let parsed = try #require(try NetlinkMessage.parseAll(bytes[...]).first)
        #expect(parsed == message)
        let attributes = try NetlinkAttributes(parsing: parsed.payload[16...], context: "test")
        #expect(attributes.string(3) == "vsw0" && attributes.string(20) == "veneer-switch type=private")
        #expect(try attributes.nested(18, context: "test")?.string(1) == "bridge")
    }

    @Test func setLinkRequestExactBytes() {
        let bytes = RouteRequest.setLink(index: 7, up: true, mtu: 9000, master: 3, sequence: 1).encoded
        let expected: [UInt8] = [48, 0, 0, 0, 19, 0, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                                 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,
                                 8, 0, 4, 0, 0x28, 0x23, 0, 0,
                                 8, 0, 10, 0, 3, 0, 0, 0]
        #expect(bytes == expected)
    }

    @Test func bridgeVLANAndAddressRequests() throws {
        let add = RouteRequest.bridgeVLAN(index: 4, .access(100), add: true, sequence: 2)
        #expect(add.type == 19 && add.payload[0] == 7)  // RTM_SETLINK, AF_BRIDGE
        let spec = try #require(try NetlinkAttributes(parsing: add.payload[16...], context: "t").nested(26, context: "t"))
        #expect(spec.first(2) == [6, 0, 100, 0])
        #expect(RouteRequest.bridgeVLAN(index: 4, .tagged(1), add: false, sequence: 3).type == 17)

        let address = RouteRequest.addAddress(index: 2, family: 2, address: [10, 1, 2, 3], prefixLength: 24, broadcast: [10, 1, 2, 255], sequence: 4)
        #expect(Array(address.payload[0..<8]) == [2, 24, 0, 0, 2, 0, 0, 0])
        let attributes = try NetlinkAttributes(parsing: address.payload[8...], context: "t")
        #expect(attributes.first(2) == [10, 1, 2, 3] && attributes.first(1) == [10, 1, 2, 3] && attributes.first(4) == [10, 1, 2, 255])
    }

    @Test func vethPeerNestsAnInterfaceHeader() throws {
        let message = RouteRequest.createVethPair(name: "a0", peer: "a1", sequence: 5)
        let attributes = try NetlinkAttributes(parsing: message.payload[16...], context: "t")
        let info = try #require(try attributes.nested(18, context: "t"))
        #expect(info.string(1) == "veth")
        let peer = try #require(try info.nested(2, context: "t")?.first(1))
        #expect(peer.count == 16 + 8 && Array(peer[0..<16]) == [UInt8](repeating: 0, count: 16))
        #expect(try NetlinkAttributes(parsing: peer[16...], context: "t").string(3) == "a1")
    }

    @Test func decodesALinkReplyAsTheKernelWritesIt() throws {
        var payload = InterfaceInfoHeader(family: 0, deviceType: 1, index: 12, flags: 0x1043, change: 0).encoded
        NetlinkAttribute.string(3, "sw1").encode(into: &payload)
        NetlinkAttribute.u32(4, 1500).encode(into: &payload)
        NetlinkAttribute.u32(10, 0).encode(into: &payload)
        NetlinkAttribute.string(20, "veneer-switch type=external uplink=eth0").encode(into: &payload)
        NetlinkAttribute.nested(type: 18 | 0x8000, [.string(1, "bridge"), .nested(type: 2, [.u32(1, 1500), .u8(7, 1)])]).encode(into: &payload)
        NetlinkAttribute.bytes(type: 1, [0x00, 0x15, 0x5d, 1, 2, 3]).encode(into: &payload)
        let wire = NetlinkMessage(type: 16, flags: 2, sequence: 1, payload: payload).encoded
        let done = NetlinkMessage(type: 3, flags: 2, sequence: 1, payload: [0, 0, 0, 0]).encoded
        let messages = try NetlinkMessage.parseAll((wire + done)[...])
        #expect(messages.count == 2 && messages[1].type == 3)
        let link = try LinkMessage(decoding: messages[0])
        #expect(link.index == 12 && link.name == "sw1" && link.mtu == 1500 && link.master == 0)
        #expect(link.kind == "bridge" && link.bridgeVLANFiltering == 1)  // NLA_F_NESTED is masked off
        #expect(link.alias == "veneer-switch type=external uplink=eth0")
        #expect(link.hardwareAddress == [0x00, 0x15, 0x5d, 1, 2, 3])

        var bridgePayload = InterfaceInfoHeader(family: 7, index: 13).encoded
        NetlinkAttribute.nested(type: 26, [.bytes(type: 2, BridgeVLANInfo.access(20).encoded), .bytes(type: 2, BridgeVLANInfo.tagged(30).encoded)])
            .encode(into: &bridgePayload)
        let port = try LinkMessage(decoding: NetlinkMessage(type: 16, flags: 0, sequence: 1, payload: bridgePayload))
        #expect(port.bridgeVLANs == [.access(20), .tagged(30)])
    }

    @Test func decodesAnAddressReply() throws {
        var payload = InterfaceAddressHeader(family: 2, prefixLength: 16, index: 4).encoded
        NetlinkAttribute.bytes(type: 1, [192, 168, 0, 1]).encode(into: &payload)
        let address = try AddressMessage(decoding: NetlinkMessage(type: 20, flags: 0, sequence: 1, payload: payload))
        #expect(address.address == [192, 168, 0, 1] && address.header.prefixLength == 16 && address.header.index == 4)
        #expect(throws: NetlinkDecodeError.self) {
            try AddressMessage(decoding: NetlinkMessage(type: 20, flags: 0, sequence: 1, payload: InterfaceAddressHeader(family: 2).encoded))
        }
    }

    @Test func errorReplyWithExtendedAck() throws {
        // errno -95 (EOPNOTSUPP), the capped request header, then NLMSGERR_ATTR_MSG.
        var payload = le32(UInt32(bitPattern: -95))
        payload += NetlinkMessage(type: 16, flags: 5, sequence: 3, payload: []).encoded
        NetlinkAttribute.string(1, "VLAN filtering is not supported").encode(into: &payload)
        let reply = try NetlinkErrorReply(NetlinkMessage(type: 2, flags: 0x300, sequence: 3, payload: payload))
        #expect(reply == NetlinkErrorReply(errno: 95, kernelMessage: "VLAN filtering is not supported"))
        let ack = try NetlinkErrorReply(NetlinkMessage(type: 2, flags: 0x100, sequence: 3, payload: le32(0) + [UInt8](repeating: 0, count: 16)))
        #expect(ack.errno == 0 && ack.kernelMessage == nil)
        #expect(throws: NetlinkDecodeError.self) { try NetlinkErrorReply(NetlinkMessage(type: 2, flags: 0, sequence: 3, payload: [1, 2])) }
    }

    @Test func hostileLengthsAreErrorsNotCrashes() {
        // A message claiming more bytes than the datagram holds, or fewer than its own header.
        var long = NetlinkMessage(type: 16, flags: 0, sequence: 1, payload: [1, 2, 3, 4]).encoded
        long[0] = 200
        #expect(throws: NetlinkDecodeError.self) { try NetlinkMessage.parseAll(long[...]) }
        var short = long
        short[0] = 8
        #expect(throws: NetlinkDecodeError.self) { try NetlinkMessage.parseAll(short[...]) }
        #expect(throws: NetlinkDecodeError.self) { try NetlinkMessage.parseAll([UInt8](repeating: 0, count: 20)[...]) }
        // Attributes: too long, and shorter than their own header.
        #expect(throws: NetlinkDecodeError.self) { try NetlinkAttributes(parsing: [40, 0, 3, 0, 0, 0, 0, 0][...], context: "t") }
        #expect(throws: NetlinkDecodeError.self) { try NetlinkAttributes(parsing: [2, 0, 3, 0][...], context: "t") }
        // A link message too short for ifinfomsg.
        #expect(throws: NetlinkDecodeError.self) { try LinkMessage(decoding: NetlinkMessage(type: 16, flags: 0, sequence: 1, payload: [0, 0, 0])) }
        // Seeded random bytes: every outcome is a value or a NetlinkDecodeError.
        var rng = SplitMix64(seed: 0x5eed)
        for _ in 0..<20_000 {
            let count = Int(rng.next() % 96)
            var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if count >= 4 { bytes[0] = UInt8(count - Int(rng.next() % 8)) ; bytes[1] = 0; bytes[2] = 0; bytes[3] = 0 }
            if let messages = try? NetlinkMessage.parseAll(bytes[...]) {
                for m in messages {
                    _ = try? LinkMessage(decoding: m)
                    _ = try? AddressMessage(decoding: m)
                    _ = try? NetlinkErrorReply(m)
                }
            }
        }
    }
}

func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8((v >> 8) & 0xff), UInt8((v >> 16) & 0xff), UInt8(v >> 24)] }

struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
