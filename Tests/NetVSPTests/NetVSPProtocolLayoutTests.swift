import NVSPProtocol
import RNDISProtocol
import Testing

/// Sizes and offsets of the NVSP and RNDIS layouts, as Linux's hyperv_net.h and rndis.h lay them out.
@Suite("netvsp wire formats")
struct NetVSPProtocolLayoutTests {
    func le32(_ b: [UInt8], _ at: Int) -> UInt32 { UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24 }

    @Test func nvspGuestMessagesDecodeAtLinuxsOffsets() {
        var ini = [UInt8](repeating: 0, count: 40)
        ini[0] = 1; ini[4] = 0x01; ini[6] = 0x06; ini[8] = 0x01; ini[10] = 0x06
        #expect(NVSPMessage(ini) == .initialize(minimum: 0x0006_0001, maximum: 0x0006_0001))
        var config = [UInt8](repeating: 0, count: 40)
        config[0] = 125; config[4] = 0xEA; config[5] = 0x05; config[12] = 0x08
        #expect(NVSPMessage(config) == .ndisConfig(mtu: 1514, capabilities: 8))
        var recv = [UInt8](repeating: 0, count: 40)
        recv[0] = 101; recv[4] = 0x34; recv[8] = 0xFE; recv[9] = 0xCA
        #expect(NVSPMessage(recv) == .sendReceiveBuffer(gpadl: 0x34, id: 0xCAFE))
        var pkt = [UInt8](repeating: 0, count: 40)
        pkt[0] = 107; pkt[4] = 1; pkt[8] = 3; pkt[12] = 0x40
        #expect(NVSPMessage(pkt) == .rndisPacket(channelType: 1, sectionIndex: 3, sectionSize: 0x40))
        #expect(NVSPMessage([107, 0, 0, 0, 1]) == .unknown(type: 107, length: 5), "too short for its body")
        #expect(NVSPMessage([]) == .unknown(type: 0, length: 0))
        for message in [NVSPMessage.initialize(minimum: 1, maximum: 2), .subchannel(operation: 1, count: 7), .revokeSendBuffer(id: 0),
                        .rndisPacketComplete(status: 1), .switchDataPath(active: 1), .ndisVersion(major: 6, minor: 30)] {
            #expect(NVSPMessage(message.encoded()) == message)
        }
    }

    @Test func nvspRepliesHaveLinuxsLayoutAndPadding() {
        let ini = NVSPReply.initializeComplete(status: .success).encoded(size: 28)
        #expect(ini.count == 28 && le32(ini, 0) == 2 && le32(ini, 12) == 1)
        let recv = NVSPReply.receiveBufferComplete(status: .success, subAllocationSize: 1648, count: 636).encoded(size: 40)
        #expect(recv.count == 40 && le32(recv, 0) == 102 && le32(recv, 4) == 1 && le32(recv, 8) == 1)
        #expect(le32(recv, 12) == 0 && le32(recv, 16) == 1648 && le32(recv, 20) == 636 && le32(recv, 24) == 1648 * 636)
        let send = NVSPReply.sendBufferComplete(status: .success, sectionSize: 6144).encoded(size: 28)
        #expect(le32(send, 0) == 105 && le32(send, 4) == 1 && le32(send, 8) == 6144)
        let sub = NVSPReply.subchannelComplete(status: .success, count: 3).encoded(size: 28)
        #expect(le32(sub, 0) == 133 && le32(sub, 4) == 1 && le32(sub, 8) == 3)
        let rndis = NVSPReply.rndisPacket(channelType: .control).encoded(size: 28)
        #expect(le32(rndis, 0) == 107 && le32(rndis, 4) == 1 && le32(rndis, 8) == 0xFFFF_FFFF)
        #expect(NVSPVersion.v5.messageSize == 28 && NVSPVersion.v61.messageSize == 40)
        #expect(NVSPVersion.negotiate(minimum: 0x0006_0001, maximum: 0x0006_0001) == .v61)
        #expect(NVSPVersion.negotiate(minimum: 2, maximum: 2) == nil)
        #expect(NVSPVersion.negotiate(minimum: 0, maximum: 0x0005_FFFF) == .v5)
    }

    @Test func transferPageHeaderLayout() {
        var b: [UInt8] = []
        let size = TransferPageHeader.encode(setID: 0xCAFE, ranges: [TransferPageRange(byteCount: 100, byteOffset: 1648),
                                                                     TransferPageRange(byteCount: 60, byteOffset: 0)][...], into: &b)
        #expect(size == 24 && b.count == 24 && b[0] == 0xFE && b[1] == 0xCA && le32(b, 4) == 2)
        #expect(le32(b, 8) == 100 && le32(b, 12) == 1648 && le32(b, 16) == 60 && le32(b, 20) == 0)
        #expect(TransferPageHeader.decode(b)?.ranges.count == 2)
        #expect(TransferPageHeader.decode(Array(b[0..<20])) == nil)
    }

    @Test func rndisControlLayouts() throws {
        let q = RNDISRequest.query(requestID: 9, oid: RNDISOID.permanentAddress, information: [1, 2])
        let bytes = q.encoded()
        #expect(bytes.count == 30 && le32(bytes, 0) == 4 && le32(bytes, 4) == 30 && le32(bytes, 8) == 9)
        #expect(le32(bytes, 12) == 0x0101_0101 && le32(bytes, 16) == 2 && le32(bytes, 20) == 20 && bytes[28] == 1)
        #expect(try RNDISRequest.decode(bytes) == q)
        let initialize = RNDISResponse.initializeComplete(requestID: 1, status: 0, maxPacketsPerMessage: 8, maxTransferSize: 4096,
                                                          alignmentShift: 3).encoded()
        #expect(initialize.count == RNDISResponse.initializeCompleteSize && le32(initialize, 0) == 0x8000_0002)
        #expect(le32(initialize, 16) == 1 && le32(initialize, 24) == 1 && le32(initialize, 32) == 8 && le32(initialize, 40) == 3)
        let answer = RNDISResponse.queryComplete(requestID: 1, status: 0, information: [1, 2, 3, 4, 5, 6]).encoded()
        #expect(answer.count == 30 && le32(answer, 16) == 6 && le32(answer, 20) == 16 && answer[24] == 1)
        let indication = RNDISResponse.indicateStatus(status: RNDISStatus.mediaConnect, buffer: []).encoded()
        #expect(indication.count == 20 && le32(indication, 0) == 7 && le32(indication, 8) == 0x4001_000B)
        #expect(RNDISResponse.resetComplete(status: 0).encoded().count == 16)
        #expect(RNDISResponse.keepaliveComplete(requestID: 4, status: 0).encoded().count == 16)
        // Information outside the message is refused, not read.
        var bad = bytes
        bad[20] = 200
        #expect(throws: RNDISRequest.DecodeError.self) { try RNDISRequest.decode(bad) }
    }

    @Test func packetMessageAndPPILayouts() {
        var b = [UInt8](repeating: 0, count: 60)
        RNDISPacketHeader(dataOffset: 52, dataLength: 0, ppiOffset: 36, ppiLength: 16).encodeMessage(totalLength: 60, into: &b)
        PPIEntry(type: PPIType.ieee8021Q.rawValue, value: 0x70).encode(into: &b, at: 44)
        #expect(le32(b, 0) == 1 && le32(b, 4) == 60 && le32(b, 8) == 52 && le32(b, 28) == 36 && le32(b, 32) == 16)
        #expect(le32(b, 44) == 16 && le32(b, 48) == 6 && le32(b, 52) == 12 && le32(b, 56) == 0x70)
        var seen: [PPIEntry] = []
        #expect(PPIEntry.walk(b, offset: 44, length: 16) { seen.append($0) })
        #expect(seen == [PPIEntry(type: 6, value: 0x70)])
        var broken = b
        broken[44] = 200
        #expect(!PPIEntry.walk(broken, offset: 44, length: 16) { _ in })
        broken[44] = 4
        #expect(!PPIEntry.walk(broken, offset: 44, length: 16) { _ in })
        #expect(PPIValue.VLAN(id: 12, priority: 3).tci == 0x600C)
        let lso = PPIValue.LargeSend(mss: 1460, tcpHeaderOffset: 34, ipv6: true)
        #expect(lso.mss == 1460 && lso.tcpHeaderOffset == 34 && lso.isVersion2 && lso.isIPv6)
    }

    @Test func ndisObjects() throws {
        for (revision, size) in [(UInt8(1), 112), (2, 144), (3, 156)] {
            let caps = NDISOffloadCapabilities(checksum: true, lsoMaxSize: 62780).encoded(revision: revision)
            #expect(caps.count == size && caps[0] == 0xA7 && caps[1] == revision && Int(caps[2]) | Int(caps[3]) << 8 == size)
            #expect(le32(caps, 8) == 0x54 && le32(caps, 24) == 0x55 && le32(caps, 84) == 62780 && le32(caps, 104) == 5)
        }
        let rss = NDISReceiveScaleCapabilities(receiveQueues: 4).encoded()
        #expect(rss.count == 18 && rss[0] == 0x88 && rss[1] == 2 && le32(rss, 12) == 4 && rss[16] == 128)
        let params = NDISReceiveScaleParameters(flags: 0, hashInformation: 0x1701, table: [0, 1, 2, 3], key: [UInt8](repeating: 7, count: 40))
        let encoded = params.encoded()
        #expect(encoded.count == 40 + 16 + 40 && encoded[0] == 0x89)
        #expect(try NDISReceiveScaleParameters.decode(encoded) == params)
        var outside = encoded
        outside[16] = 250
        #expect(throws: NDISReceiveScaleParameters.DecodeError.self) { try NDISReceiveScaleParameters.decode(outside) }
        let offload = NDISOffloadParameters(tcp4Checksum: 4, udp4Checksum: 4, tcp6Checksum: 4, udp6Checksum: 4, lsoV2IP4: 2, lsoV2IP6: 2)
        #expect(NDISOffloadParameters(offload.encoded()) == offload && offload.encoded().count == 28)
    }
}
