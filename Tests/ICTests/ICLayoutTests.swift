import ICProtocol
import Testing

// Sizes and field offsets of the IC wire structures, with the numbers written out from Linux
// include/linux/hyperv.h (vmbuspipe_hdr, icmsg_hdr, icmsg_negotiate, heartbeat_msg_data), not
// from the encoder, so an encoder change that moves a field fails here.

private func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
private func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * $1) } }
private func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }

@Suite struct ICLayoutTests {
    @Test func headerSizesMatchLinux() {
        #expect(PipeHeader.size == 8)
        #expect(ICMessageHeader.size == 20)
        #expect(ICFrame.headerSize == 28, "Linux ICMSG_HDR")
        #expect(NegotiateMessage.fixedSize == 8)
        #expect(ICVersion.wireSize == 4)
        #expect(HeartbeatMessage.size == 16)
    }

    @Test func everyHeaderFieldSitsAtItsOffset() throws {
        let frame = ICFrame(
            pipe: PipeHeader(flags: 0x1111_2222, messageSize: 0x3333_4444),
            header: ICMessageHeader(frameworkVersion: ICVersion(0x0102, 0x0304), messageType: ICMessageType(rawValue: 0x0506),
                                    messageVersion: ICVersion(0x0708, 0x090a), messageSize: 3, status: 0x8000_4005,
                                    transactionID: 0xab, flags: [.transaction, .response], reserved: 0xcdef),
            body: [0xb0, 0xb1, 0xb2])
        let b = frame.encode()
        #expect(b.count == 31)
        #expect(u32(b, 0) == 0x1111_2222)      // pipe flags
        #expect(u32(b, 4) == 0x3333_4444)      // pipe msgsize
        #expect(u16(b, 8) == 0x0102)           // icverframe.major
        #expect(u16(b, 10) == 0x0304)          // icverframe.minor
        #expect(u16(b, 12) == 0x0506)          // icmsgtype
        #expect(u16(b, 14) == 0x0708)          // icvermsg.major
        #expect(u16(b, 16) == 0x090a)          // icvermsg.minor
        #expect(u16(b, 18) == 3)               // icmsgsize
        #expect(u32(b, 20) == 0x8000_4005)     // status
        #expect(b[24] == 0xab)                 // ictransaction_id
        #expect(b[25] == 0x05)                 // icflags
        #expect(u16(b, 26) == 0xcdef)          // reserved
        #expect(Array(b[28...]) == [0xb0, 0xb1, 0xb2])
        #expect(try ICFrame.decode(b) == frame)
    }

    @Test func flagAndTypeNumbers() {
        #expect(ICHeaderFlags.hostRequest.rawValue == 3)
        #expect(ICHeaderFlags.guestResponse.rawValue == 5)
        let types: [(ICMessageType, UInt16)] = [(.negotiate, 0), (.heartbeat, 1), (.kvpExchange, 2), (.shutdown, 3),
                                                (.timeSync, 4), (.vss, 5), (.rdv, 6), (.fileCopy, 7), (.vmSession, 8)]
        for (type, number) in types { #expect(type.rawValue == number) }
        #expect(ICStatus.fail == 0x8000_4005)
    }

    @Test func aRequestSizesItsPipeAndBody() {
        let frame = ICFrame.request(type: .heartbeat, transactionID: 7, frameworkVersion: ICVersion(3, 0),
                                    messageVersion: ICVersion(3, 0), body: HeartbeatMessage(sequenceNumber: 9).encode())
        let b = frame.encode()
        #expect(b.count == 28 + 16)
        #expect(u32(b, 0) == 1, "data pipe message")
        #expect(u32(b, 4) == 20 + 16, "msgsize counts the IC header and body")
        #expect(u16(b, 18) == 16)
        #expect(b[25] == 3, "TRANSACTION|REQUEST")
        #expect(b[24] == 7)
    }

    @Test func negotiateBodyListsFrameworkThenMessageVersions() throws {
        let message = NegotiateMessage(frameworkVersions: [ICVersion(1, 0), ICVersion(3, 0)],
                                       messageVersions: [ICVersion(1, 0), ICVersion(3, 0)])
        let b = message.encode()
        #expect(b.count == 24)
        #expect(message.size == 24)
        #expect(u16(b, 0) == 2)   // icframe_vercnt
        #expect(u16(b, 2) == 2)   // icmsg_vercnt
        #expect(u32(b, 4) == 0)   // reserved
        #expect([u16(b, 8), u16(b, 10), u16(b, 12), u16(b, 14)] == [1, 0, 3, 0])
        #expect([u16(b, 16), u16(b, 18), u16(b, 20), u16(b, 22)] == [1, 0, 3, 0])
        #expect(try NegotiateMessage.decode(b[...]) == message)
        let request = ICFrame.request(type: .negotiate, transactionID: 1, body: b).encode()
        #expect(request.count == 52)
        #expect(u16(request, 8) == 0 && u16(request, 14) == 0, "versions are zero in a negotiate request")
    }

    @Test func heartbeatBodyHasTheSequenceFirst() throws {
        let b = HeartbeatMessage(sequenceNumber: 0x0102_0304_0506_0708, applicationState: 2).encode()
        #expect(b.count == 16)
        #expect(u64(b, 0) == 0x0102_0304_0506_0708)
        #expect(u32(b, 8) == 2)
        #expect(u32(b, 12) == 0)
        #expect(try HeartbeatMessage.decode(b[...]).sequenceNumber == 0x0102_0304_0506_0708)
        #expect(try HeartbeatMessage.decode(b.prefix(8)) == HeartbeatMessage(sequenceNumber: 0x0102_0304_0506_0708, applicationState: nil))
        // Linux's own struct is 8 + 32 bytes; the extra bytes are ignored.
        #expect(try HeartbeatMessage.decode((b + [UInt8](repeating: 0xee, count: 24))[...]).applicationState == 2)
    }

    /// Linux `ictimesync_ref_data` (22 bytes) from 4.0, `ictimesync_data` (25 bytes) before.
    @Test func timeSyncBodiesMatchLinuxsTwoLayouts() throws {
        let v4 = TimeSyncMessage(parentTime: 0x0102_0304_0506_0708, referenceTime: 0x1112_1314_1516_1718, flags: .sync,
                                 leapFlags: 1, stratum: 2).encode()
        #expect(v4.count == 22 && TimeSyncMessage.referenceSize == 22)
        #expect(u32(v4, 0) == 0x0506_0708 && u32(v4, 4) == 0x0102_0304)
        #expect(u32(v4, 8) == 0x1516_1718 && u32(v4, 12) == 0x1112_1314)
        #expect(v4[16] == 1 && v4[17] == 1 && v4[18] == 2 && v4[19...] == [0, 0, 0])
        let v3 = TimeSyncMessage(parentTime: 5, referenceTime: nil, flags: .sample).encode()
        #expect(v3.count == 25 && TimeSyncMessage.legacySize == 25)
        #expect(v3[0] == 5 && v3[24] == 2 && v3[8..<24].allSatisfy { $0 == 0 })
        #expect(try TimeSyncMessage.decode(v4[...], version: ICVersion(4, 0)).referenceTime == 0x1112_1314_1516_1718)
        #expect(try TimeSyncMessage.decode(v3[...], version: ICVersion(3, 0)).flags == .sample)
        #expect(throws: ICWireError.self) { try TimeSyncMessage.decode(v4[...], version: ICVersion(1, 0)) }
        #expect(throws: ICWireError.self) { try TimeSyncMessage.decode(v4.prefix(21), version: ICVersion(4, 0)) }
        #expect(FileTime.fromUnix(nanoseconds: 0) == 116_444_736_000_000_000)
        #expect(FileTime.toUnixNanoseconds(116_444_736_000_000_123) == 12_300)
        #expect(FileTime.toUnixNanoseconds(1) == nil && FileTime.toUnixNanoseconds(.max) == nil)
    }

    /// Linux `shutdown_msg_data`: reason, timeout, flags, then 2048 bytes of UTF-16 message.
    @Test func shutdownBodyMatchesLinux() throws {
        let message = try #require(ShutdownMessage(reasonCode: 0x8000_0000, timeoutSeconds: 30, flags: [.force, .restart],
                                                   displayMessage: Array("Hi".utf16)))
        let b = message.encode()
        #expect(b.count == 2060 && ShutdownMessage.size == 2060)
        #expect(u32(b, 0) == 0x8000_0000 && u32(b, 4) == 30 && u32(b, 8) == 3)
        #expect(b[12...15] == [0x48, 0, 0x69, 0] && b[16...].allSatisfy { $0 == 0 })
        #expect(try ShutdownMessage.decode(b[...]) == message)
        #expect(throws: ICWireError.self) { try ShutdownMessage.decode(b.prefix(2059)) }
        #expect(ShutdownMessage(reasonCode: 0, flags: [], displayMessage: [UInt16](repeating: 0x41, count: 1025)) == nil)
        #expect(ShutdownMessage(reasonCode: 0, flags: [], displayMessage: [UInt16](repeating: 0x41, count: 1024))?.encode().count == 2060)
    }

    @Test func offerPropertiesAreMessageModePipes() {
        #expect(ICOffer.channelFlags == 0x11)
        #expect(ICOffer.userDefined == [4, 0, 0, 0])
        #expect(ICInterface.heartbeat == "57164f39-9115-4e78-ab55-382f3bd5422d")
    }

    @Test func linuxNegotiateReplyDecodes() throws {
        // Linux answers in the request's buffer: counts 1/1, its choices in entries 0 and 1, the
        // rest of the host's list left behind, icmsgsize 16, the packet as long as the request.
        var reply = ICFrame.request(type: .negotiate, transactionID: 1,
                                    body: NegotiateMessage(frameworkVersions: ICFrameworkVersion.offered,
                                                           messageVersions: [ICVersion(1, 0), ICVersion(3, 0)]).encode()).encode()
        reply[18] = 16; reply[19] = 0
        reply[25] = 5
        reply[28] = 1; reply[30] = 1                 // counts 1/1
        reply[36] = 3; reply[40] = 3                 // entry 0 = 3.0, entry 1 = 3.0
        let frame = try ICFrame.decode(reply + [0, 0, 0, 0])   // the ring pads to 8 bytes
        #expect(frame.header.messageSize == 16)
        #expect(frame.body.count == 28)
        let answer = try NegotiateMessage.decode(frame.body[...])
        #expect(answer.frameworkVersions == [ICVersion(3, 0)])
        #expect(answer.messageVersions == [ICVersion(3, 0)])
    }

    @Test func shortOrLyingInputIsAnErrorNamingTheStructure() {
        let good = ICFrame.request(type: .heartbeat, transactionID: 1, body: HeartbeatMessage(sequenceNumber: 1).encode()).encode()
        #expect(throws: ICWireError.truncated(structure: "IC message header", needed: 28, available: 27)) {
            try ICFrame.decode(Array(good.prefix(27)))
        }
        #expect(throws: ICWireError.self) { try ICFrame.decode([]) }
        #expect(throws: ICWireError.self) { try ICFrame.decode(Array(good.prefix(40))) }   // icmsgsize 16, 12 present
        #expect(throws: ICWireError.self) { try ICFrame.decode([UInt8](repeating: 0, count: ICFrame.maximumSize + 1)) }
        #expect(throws: ICWireError.self) { try HeartbeatMessage.decode([1, 2, 3, 4, 5, 6, 7][...]) }

        var tooMany = NegotiateMessage(frameworkVersions: [], messageVersions: []).encode()
        tooMany[0] = 101
        #expect(throws: ICWireError.invalidField(structure: "IC negotiate body", field: "icframe_vercnt", value: 101)) {
            try NegotiateMessage.decode(tooMany[...])
        }
        tooMany[0] = 0; tooMany[2] = 101
        #expect(throws: ICWireError.invalidField(structure: "IC negotiate body", field: "icmsg_vercnt", value: 101)) {
            try NegotiateMessage.decode(tooMany[...])
        }
        var past = NegotiateMessage(frameworkVersions: [ICVersion(1, 0)], messageVersions: [ICVersion(1, 0)]).encode()
        past[2] = 2   // claims a third entry that is not there
        #expect(throws: ICWireError.truncated(structure: "IC negotiate body", needed: 20, available: 16)) {
            try NegotiateMessage.decode(past[...])
        }
        #expect(ICWireError.truncated(structure: "IC message header", needed: 28, available: 27).description
            == "IC message header: needs 28 bytes, only 27 present")
    }
}
