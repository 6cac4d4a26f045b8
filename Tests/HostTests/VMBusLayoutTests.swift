import Testing
import VMBusProtocol

// Sizes and field offsets of every VMBus wire structure, with the numbers written out from Linux
// include/linux/hyperv.h and hvgdk_mini.h (not from the encoder), so an encoder change that moves a
// field fails here. Each test fills fields with distinct values and reads them back at the offsets.

private func u16(_ b: [UInt8], _ at: Int) -> UInt16 { LittleEndian.load(UInt16.self, from: b, at: at) ?? 0xDEAD }
private func u32(_ b: [UInt8], _ at: Int) -> UInt32 { LittleEndian.load(UInt32.self, from: b, at: at) ?? 0xDEAD_BEEF }
private func u64(_ b: [UInt8], _ at: Int) -> UInt64 { LittleEndian.load(UInt64.self, from: b, at: at) ?? 0xDEAD_BEEF }

@Suite struct VMBusLayoutTests {
    @Test func guidUsesMixedEndianWireOrder() throws {
        let scsi = try #require(GUID("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f"))
        #expect(scsi.wireBytes == [0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f])
        #expect(try GUID.decode(scsi.wireBytes) == scsi)
        #expect(scsi.description == "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f")
        #expect(GUID("{BA6163D9-04A1-4D29-B605-72E2FFB1DC7F}") == scsi)
        #expect(GUID("ba6163d9-04a1-4d29-b605-72e2ffb1dc7") == nil)
        #expect(GUID("ba6163d9-04a1-4d29-b605+72e2ffb1dc7f") == nil)
        #expect(GUID("zz6163d9-04a1-4d29-b605-72e2ffb1dc7f") == nil)
        #expect(throws: VMBusWireError.self) { try GUID.decode(Array(scsi.wireBytes.prefix(15))) }
        #expect(throws: VMBusWireError.self) { try GUID.decode(scsi.wireBytes + [0]) }
    }

    @Test func deviceClassesMatchTheirTextForms() {
        let expected: [(GUID, String)] = [
            (DeviceClass.scsi, "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f"),
            (DeviceClass.ideAccelerator, "32412632-86cb-44a2-9b5c-50d1417354f5"),
            (DeviceClass.network, "f8615163-df3e-46c5-913f-f2d2f965ed0e"),
            (DeviceClass.heartbeat, "57164f39-9115-4e78-ab55-382f3bd5422d"),
            (DeviceClass.shutdown, "0e0b6031-5213-4934-818b-38d90ced39db"),
            (DeviceClass.timeSync, "9527e630-d0ae-497b-adce-e80ab0175caf"),
            (DeviceClass.kvp, "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6"),
            (DeviceClass.vss, "35fa2e29-ea23-4236-96ae-3a6ebacba440"),
            (DeviceClass.dynamicMemory, "525074dc-8985-46e2-8057-a307dc18a502"),
        ]
        for (guid, text) in expected {
            #expect(guid.description == text)
            #expect(GUID(text) == guid)
        }
    }

    @Test func versionsAreMajorShiftedSixteenOrMinor() {
        #expect(VMBusVersion.win8.rawValue == 0x0002_0004)
        #expect(VMBusVersion.win8_1.rawValue == 0x0003_0000)
        #expect(VMBusVersion.win10.rawValue == 0x0004_0000)
        #expect(VMBusVersion.win10_4_1.rawValue == 0x0004_0001)
        #expect(VMBusVersion.win10_5_0.rawValue == 0x0005_0000)
        #expect(VMBusVersion.win10_5_1.rawValue == 0x0005_0001)
        #expect(VMBusVersion.win10_5_2.rawValue == 0x0005_0002)
        #expect(VMBusVersion.win10_5_3.rawValue == 0x0005_0003)
        #expect(VMBusVersion.v6_0.rawValue == 0x0006_0000)
        #expect(VMBusVersion.win10_5_3.description == "5.3")
    }

    @Test func messageTypeNumbers() {
        let numbers: [(ChannelMessageType, UInt32)] = [
            (.offerChannel, 1), (.rescindChannelOffer, 2), (.requestOffers, 3), (.allOffersDelivered, 4),
            (.openChannel, 5), (.openChannelResult, 6), (.closeChannel, 7), (.gpadlHeader, 8), (.gpadlBody, 9),
            (.gpadlCreated, 10), (.gpadlTeardown, 11), (.gpadlTorndown, 12), (.relidReleased, 13),
            (.initiateContact, 14), (.versionResponse, 15), (.unload, 16), (.unloadResponse, 17),
            (.modifyChannel, 22), (.modifyChannelResponse, 24),
        ]
        for (type, number) in numbers { #expect(type.rawValue == number) }
    }

    @Test func offerChannelLayout() throws {
        let offer = OfferChannel(
            interfaceType: DeviceClass.scsi, interfaceInstance: DeviceClass.network, channelFlags: 0x1122,
            mmioMegabytes: 0x3344, userDefined: Array(1...120), subChannelIndex: 0x5566, mmioMegabytesOptional: 0x7788,
            childRelid: 0x99AA_BBCC, monitorID: 0xDD, monitorAllocated: 0xEE, isDedicatedInterrupt: 0x0102, connectionID: 0x0304_0506)
        let b = offer.encode()
        #expect(b.count == 196)
        #expect(u32(b, 0) == 1 && u32(b, 4) == 0)
        #expect(Array(b[8..<24]) == DeviceClass.scsi.wireBytes)
        #expect(Array(b[24..<40]) == DeviceClass.network.wireBytes)
        #expect(b[40..<56].allSatisfy { $0 == 0 })
        #expect(u16(b, 56) == 0x1122 && u16(b, 58) == 0x3344)
        #expect(Array(b[60..<180]) == Array(1...120))
        #expect(u16(b, 180) == 0x5566 && u16(b, 182) == 0x7788)
        #expect(u32(b, 184) == 0x99AA_BBCC)
        #expect(b[188] == 0xDD && b[189] == 0xEE)
        #expect(u16(b, 190) == 0x0102 && u32(b, 192) == 0x0304_0506)
        #expect(try OfferChannel.decode(b) == offer)
        #expect(try ChannelMessage.decode(b) == .offerChannel(offer))
        // user_def is a fixed 120-byte field: shorter data is zero-padded.
        var short = offer
        short.userDefined = [7]
        #expect(Array(short.encode()[60..<180]) == [7] + [UInt8](repeating: 0, count: 119))
    }

    @Test func smallFixedMessageLayouts() throws {
        let rescind = RescindChannelOffer(childRelid: 0x0A0B_0C0D).encode()
        #expect(rescind.count == 12 && u32(rescind, 0) == 2 && u32(rescind, 8) == 0x0A0B_0C0D)

        let released = RelidReleased(childRelid: 0x1234).encode()
        #expect(released.count == 12 && u32(released, 0) == 13 && u32(released, 8) == 0x1234)

        let close = CloseChannel(childRelid: 0x4321).encode()
        #expect(close.count == 12 && u32(close, 0) == 7 && u32(close, 8) == 0x4321)

        let result = OpenChannelResult(childRelid: 1, openID: 2, status: 0xC000_0001).encode()
        #expect(result.count == 20 && u32(result, 0) == 6)
        #expect(u32(result, 8) == 1 && u32(result, 12) == 2 && u32(result, 16) == 0xC000_0001)

        let created = GPADLCreated(childRelid: 3, gpadl: 0xE1E10, creationStatus: 5).encode()
        #expect(created.count == 20 && u32(created, 0) == 10)
        #expect(u32(created, 8) == 3 && u32(created, 12) == 0xE1E10 && u32(created, 16) == 5)

        let teardown = GPADLTeardown(childRelid: 6, gpadl: 7).encode()
        #expect(teardown.count == 16 && u32(teardown, 0) == 11 && u32(teardown, 8) == 6 && u32(teardown, 12) == 7)

        let torndown = GPADLTorndown(gpadl: 8).encode()
        #expect(torndown.count == 12 && u32(torndown, 0) == 12 && u32(torndown, 8) == 8)

        let modify = ModifyChannel(childRelid: 9, targetVP: 10).encode()
        #expect(modify.count == 16 && u32(modify, 0) == 22 && u32(modify, 8) == 9 && u32(modify, 12) == 10)

        let modified = ModifyChannelResponse(childRelid: 11, status: 12).encode()
        #expect(modified.count == 16 && u32(modified, 0) == 24 && u32(modified, 8) == 11 && u32(modified, 12) == 12)

        for (message, type) in [(ChannelMessage.requestOffers, 3), (.allOffersDelivered, 4), (.unload, 16), (.unloadResponse, 17)] {
            let b = message.encode()
            #expect(b.count == 8 && u32(b, 0) == UInt32(type) && u32(b, 4) == 0)
            #expect(try ChannelMessage.decode(b) == message)
        }
    }

    @Test func openChannelLayout() throws {
        let open = OpenChannel(childRelid: 0x11, openID: 0x22, ringBufferGPADL: 0x33, targetVP: 0x44,
                               downstreamRingBufferPageOffset: 0x55, userData: Array(repeating: 0xAB, count: 120))
        let b = open.encode()
        #expect(b.count == 148 && u32(b, 0) == 5)
        #expect(u32(b, 8) == 0x11 && u32(b, 12) == 0x22 && u32(b, 16) == 0x33 && u32(b, 20) == 0x44 && u32(b, 24) == 0x55)
        #expect(b[28..<148].allSatisfy { $0 == 0xAB })
        #expect(try ChannelMessage.decode(b) == .openChannel(open))
    }

    @Test func gpadlHeaderAndBodyLayouts() throws {
        let header = GPADLHeader(childRelid: 1, gpadl: 0xE1E10, rangeBufferLength: 24, rangeCount: 1,
                                 rangeWords: [0x0000_0000_0000_2000, 0x100, 0x101])
        let b = header.encode()
        #expect(b.count == 20 + 24 && u32(b, 0) == 8)
        #expect(u32(b, 8) == 1 && u32(b, 12) == 0xE1E10 && u16(b, 16) == 24 && u16(b, 18) == 1)
        #expect(u32(b, 20) == 0x2000 && u32(b, 24) == 0 && u64(b, 28) == 0x100 && u64(b, 36) == 0x101)
        #expect(try ChannelMessage.decode(b) == .gpadlHeader(header))
        // Bytes short of a whole word at the end are padding.
        #expect(try ChannelMessage.decode(b + [1, 2, 3]) == .gpadlHeader(header))
        #expect(throws: VMBusWireError.self) { try ChannelMessage.decode(Array(b.prefix(19))) }

        let body = GPADLBody(messageNumber: 4, gpadl: 5, words: [6, 7])
        let bb = body.encode()
        #expect(bb.count == 32 && u32(bb, 0) == 9 && u32(bb, 8) == 4 && u32(bb, 12) == 5 && u64(bb, 16) == 6 && u64(bb, 24) == 7)
        #expect(try ChannelMessage.decode(bb) == .gpadlBody(body))
        #expect(throws: VMBusWireError.self) { try ChannelMessage.decode(Array(bb.prefix(15))) }
    }

    @Test func initiateContactAndVersionResponseLayouts() throws {
        let contact = InitiateContact(versionRequested: 0x0005_0003, targetVCPU: 3, interruptPageOrTargetInfo: 0x0102,
                                      monitorPage1: 0x1111_2222, monitorPage2: 0x3333_4444)
        let b = contact.encode()
        #expect(b.count == 40 && u32(b, 0) == 14)
        #expect(u32(b, 8) == 0x0005_0003 && u32(b, 12) == 3)
        #expect(b[16] == 2 && b[17] == 1)  // msg_sint, msg_vtl
        #expect(u64(b, 24) == 0x1111_2222 && u64(b, 32) == 0x3333_4444)
        #expect(contact.messageSINT == 2 && contact.messageVTL == 1)
        // A 6.0 guest appends fields; the 40-byte layout still decodes.
        #expect(try ChannelMessage.decode(b + [UInt8](repeating: 9, count: 16)) == .initiateContact(contact))

        let response = VersionResponse(versionSupported: true, connectionState: 2, messageConnectionID: 4)
        let r = response.encode()
        #expect(r.count == 16 && u32(r, 0) == 15 && r[8] == 1 && r[9] == 2 && u16(r, 10) == 0 && u32(r, 12) == 4)
        #expect(try ChannelMessage.decode(r) == .versionResponse(response))
    }

    @Test func everyFixedMessageRejectsEveryShortLength() {
        let samples: [[UInt8]] = [
            OfferChannel(interfaceType: .zero, interfaceInstance: .zero, childRelid: 1, connectionID: 2).encode(),
            RescindChannelOffer(childRelid: 1).encode(), OpenChannel(childRelid: 1, openID: 2, ringBufferGPADL: 3, targetVP: 0, downstreamRingBufferPageOffset: 2).encode(),
            OpenChannelResult(childRelid: 1, openID: 2, status: 0).encode(), CloseChannel(childRelid: 1).encode(),
            GPADLCreated(childRelid: 1, gpadl: 2, creationStatus: 0).encode(), GPADLTeardown(childRelid: 1, gpadl: 2).encode(),
            GPADLTorndown(gpadl: 1).encode(), RelidReleased(childRelid: 1).encode(),
            InitiateContact(versionRequested: 1).encode(), VersionResponse(versionSupported: true).encode(),
            ModifyChannel(childRelid: 1, targetVP: 2).encode(), ModifyChannelResponse(childRelid: 1, status: 0).encode(),
        ]
        for full in samples {
            #expect((try? ChannelMessage.decode(full)) != nil)
            for length in 0..<full.count {
                #expect(throws: VMBusWireError.self) { try ChannelMessage.decode(Array(full.prefix(length))) }
            }
        }
        #expect(throws: VMBusWireError.oversized(structure: "channel message", maximum: 240, actual: 241)) {
            try ChannelMessage.decode([UInt8](repeating: 0, count: 241))
        }
        #expect(throws: VMBusWireError.unknownMessageType(99)) { try ChannelMessage.decode(LittleEndian.bytes(of: UInt64(99))) }
        #expect(throws: VMBusWireError.unknownMessageType(0)) { try ChannelMessage.decode([UInt8](repeating: 0, count: 8)) }
    }

    @Test func postMessageInputLayout() throws {
        let input = PostMessageInput(connectionID: 4, payload: Array(1...20))
        let b = input.encode()
        #expect(b.count == 256)
        #expect(u32(b, 0) == 4 && u32(b, 4) == 0 && u32(b, 8) == 1 && u32(b, 12) == 20)
        #expect(Array(b[16..<36]) == Array(1...20) && b[36...].allSatisfy { $0 == 0 })
        let decoded = try PostMessageInput.decode(b)
        #expect(decoded.payload == Array(1...20) && decoded.connectionIDValue == 4)
        #expect(try b.withUnsafeBytes { buffer throws(VMBusWireError) in try PostMessageInput.decode(buffer) } == decoded)
        var huge = b
        huge.replaceSubrange(12..<16, with: LittleEndian.bytes(of: UInt32(241)))
        #expect(throws: VMBusWireError.invalidField(structure: "PostMessageInput", field: "payload_size", value: 241)) {
            try PostMessageInput.decode(huge)
        }
        #expect(throws: VMBusWireError.self) { try PostMessageInput.decode(Array(b.prefix(30))) }
        #expect(throws: VMBusWireError.self) { try PostMessageInput.decode(b + [0]) }
    }

    @Test func synicMessageSlotLayout() throws {
        let slot = SynICMessage(messageType: 1, payload: [9, 8, 7], flags: SynICMessage.messagePendingFlag, sender: 0x1122_3344_5566_7788)
        let b = slot.encode()
        #expect(b.count == 256)
        #expect(u32(b, 0) == 1 && b[4] == 3 && b[5] == 1 && u16(b, 6) == 0 && u64(b, 8) == 0x1122_3344_5566_7788)
        #expect(Array(b[16..<19]) == [9, 8, 7] && b[19...].allSatisfy { $0 == 0 })
        #expect(try SynICMessage.decode(b) == slot)
        #expect(try b.withUnsafeBytes { buffer throws(VMBusWireError) in try SynICMessage.decode(buffer) } == slot)
        var bad = b
        bad[4] = 241
        #expect(throws: VMBusWireError.self) { try SynICMessage.decode(bad) }
    }

    @Test func ringControlPageLayout() throws {
        let page = RingControlPage(writeIndex: 0x10, readIndex: 0x20, interruptMask: 1, pendingSendSize: 0x30, featureBits: 1)
        let b = page.encode()
        #expect(b.count == 4096)
        #expect(u32(b, 0) == 0x10 && u32(b, 4) == 0x20 && u32(b, 8) == 1 && u32(b, 12) == 0x30 && u32(b, 64) == 1)
        #expect(b[16..<64].allSatisfy { $0 == 0 } && b[68...].allSatisfy { $0 == 0 })
        #expect(try RingControlPage.decode(b) == page)
        #expect(throws: VMBusWireError.self) { try RingControlPage.decode(Array(b.prefix(67))) }
    }

    @Test func packetDescriptorTrailerAndGPADirectLayouts() throws {
        let descriptor = PacketDescriptor(type: 9, dataOffset8: 0x0102, length8: 0x0304, flags: 1, transactionID: 0x1122_3344_5566_7788)
        let d = descriptor.encode()
        #expect(d.count == 16 && u16(d, 0) == 9 && u16(d, 2) == 0x0102 && u16(d, 4) == 0x0304 && u16(d, 6) == 1)
        #expect(u64(d, 8) == 0x1122_3344_5566_7788)
        #expect(descriptor.dataOffset == 0x0102 * 8 && descriptor.length == 0x0304 * 8 && descriptor.completionRequested)
        #expect(PacketTrailer.value(startIndex: 0x1234) == 0x1234_0000_0000)
        #expect(PacketType.dataInBand.rawValue == 6 && PacketType.dataUsingTransferPages.rawValue == 7)
        #expect(PacketType.dataUsingGPADirect.rawValue == 9 && PacketType.completion.rawValue == 11)

        // Descriptor, reserved, rangecount, then {byte_count, byte_offset, pfns}.
        let ranges = [GPARange(byteCount: 5000, byteOffset: 100, pfns: [0x200, 0x201]), GPARange(byteCount: 1, byteOffset: 4095, pfns: [0x300])]
        var w = ByteWriter()
        let header = GPADirectHeader(ranges: ranges)
        PacketDescriptor(type: 9, dataOffset8: UInt16((16 + header.encodedSize) / 8), length8: UInt16((16 + header.encodedSize) / 8 + 1)).encode(into: &w)
        header.encode(into: &w)
        w.u64(0xFEED)
        let p = w.bytes
        #expect(u32(p, 16) == 0 && u32(p, 20) == 2)
        #expect(u32(p, 24) == 5000 && u32(p, 28) == 100 && u64(p, 32) == 0x200 && u64(p, 40) == 0x201)
        #expect(u32(p, 48) == 1 && u32(p, 52) == 4095 && u64(p, 56) == 0x300)
        let parsed = try GPADirectHeader.decode(packet: p, descriptor: try PacketDescriptor.decode(p), maxRanges: 8)
        #expect(parsed.ranges == ranges)
    }

    @Test func gpaRangesValidateTheirPageCounts() throws {
        #expect(GPARange.pageCount(byteOffset: 0, byteCount: 4096) == 1)
        #expect(GPARange.pageCount(byteOffset: 1, byteCount: 4096) == 2)
        #expect(GPARange.pageCount(byteOffset: 4095, byteCount: 2) == 2)
        #expect(GPARange.pageCount(byteOffset: 0, byteCount: UInt32.max) == 1 << 20)
        #expect(GPARange.pageCount(byteOffset: 4096, byteCount: 1) == nil)
        #expect(GPARange.pageCount(byteOffset: 0, byteCount: 0) == nil)

        let words: [UInt64] = [8192, 1, 2, 4096 | 100 << 32, 3, 4]
        let ranges = try GPARange.ranges(count: 2, words: words[...])
        #expect(ranges == [GPARange(byteCount: 8192, byteOffset: 0, pfns: [1, 2]), GPARange(byteCount: 4096, byteOffset: 100, pfns: [3, 4])])
        #expect(throws: VMBusWireError.self) { try GPARange.ranges(count: 3, words: words[...]) }
        #expect(throws: VMBusWireError.self) { try GPARange.ranges(count: 1, words: words[...]) }
        #expect(throws: VMBusWireError.self) { try GPARange.ranges(count: 1, words: [8193, 1, 2][...]) }
        #expect(throws: VMBusWireError.self) { try GPARange.ranges(count: 1, words: [0, 1][...]) }
    }

    @Test func timerExpiredMessageLayout() throws {
        let m = TimerExpiredMessage(timerIndex: 3, expirationTime: 0x1122_3344_5566_7788, deliveryTime: 0x99AA_BBCC_DDEE_FF00)
        let b = m.encode()
        #expect(b.count == 24)
        #expect(u32(b, 0) == 3 && u32(b, 4) == 0 && u64(b, 8) == 0x1122_3344_5566_7788 && u64(b, 16) == 0x99AA_BBCC_DDEE_FF00)
        #expect(try TimerExpiredMessage.decode(b) == m)
        #expect(throws: VMBusWireError.self) { try TimerExpiredMessage.decode(Array(b.prefix(23))) }
        #expect(TimerExpiredMessage.messageType == 0x8000_0010)
    }

    @Test func syntheticTimerConfigBits() {
        let c = SyntheticTimerConfig(rawValue: 1 | 1 << 1 | 1 << 3 | 0xED << 4 | 1 << 12 | 0x5 << 16 | 1 << 40)
        #expect(c.enabled && c.periodic && !c.lazy && c.autoEnable && c.directMode)
        #expect(c.apicVector == 0xED && c.sint == 5)
        #expect(c.rawValue >> 20 == 0, "reserved bits dropped")
    }

    @Test func referenceTSCPageOffsets() {
        #expect(ReferenceTSCPage.sequenceOffset == 0 && ReferenceTSCPage.scaleOffset == 8 && ReferenceTSCPage.offsetOffset == 16)
    }
}
