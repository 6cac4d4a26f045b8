import Testing
import SCSIProtocol
import StorVSPProtocol

/// Sizes and offsets of the storvsp and SCSI wire formats, against the layouts the fact sheet
/// (and Linux's storvsc_drv.c) give.
@Suite("storvsp wire formats")
struct StorVSPProtocolLayoutTests {
    @Test func vstorPacketIs64BytesWithTheUnionAt12() throws {
        #expect(VStorPacket.size == 64 && VStorPacket.headerSize == 12 && VStorPacket.unionSize == 52)
        let packet = VStorPacket(rawOperation: 0x0403_0201, flags: 0x0807_0605, status: 0x0C0B_0A09, union: [0xAA])
        let bytes = packet.encode()
        #expect(bytes.count == 64)
        #expect(Array(bytes[0..<13]) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0xA, 0xB, 0xC, 0xAA])
        #expect(try VStorPacket.decode(bytes) == packet)
        #expect(packet.encode(size: 48).count == 48)
        #expect(throws: VStorPacket.DecodeError.tooShort(11)) { try VStorPacket.decode([UInt8](repeating: 0, count: 11)) }
    }

    @Test func scsiRequestOffsetsMatchTheLongAndShortLayouts() {
        typealias O = VMSCSIRequest.Offset
        #expect([O.length, O.srbStatus, O.scsiStatus, O.portNumber, O.pathID, O.targetID, O.lun, O.cdbLength,
                  O.senseInfoLength, O.dataIn, O.dataTransferLength, O.cdbOrSense, O.reserve, O.queueTag, O.queueAction,
                  O.srbFlags, O.timeOutValue, O.queueSortKey] == [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 36, 38, 39, 40, 44, 48])
        let request = VMSCSIRequest(length: 0x34, srbStatus: 0x81, scsiStatus: 2, portNumber: 3, pathID: 4, targetID: 5, lun: 6,
                                    cdbLength: 10, senseInfoLength: 0x14, dataIn: 1, dataTransferLength: 0x1122_3344,
                                    cdbOrSense: Array(1...20), reserve: 0x5566, queueTag: 0xFF, queueAction: 0x20,
                                    srbFlags: 0x0000_010A, timeOutValue: 60, queueSortKey: 0x7788_99AA)
        let long = request.encode(size: VMSCSIRequest.longSize)
        #expect(long.count == 0x34)
        #expect(long[12...15] == [0x44, 0x33, 0x22, 0x11])
        #expect(long[16] == 1 && long[35] == 20)
        #expect(long[40...43] == [0x0A, 0x01, 0, 0] && long[44] == 60 && long[48...51] == [0xAA, 0x99, 0x88, 0x77])
        #expect(VMSCSIRequest(union: long, size: 0x34) == request)
        let short = request.encode(size: VMSCSIRequest.shortSize)
        #expect(short.count == 0x24)
        let back = VMSCSIRequest(union: short, size: 0x24)
        #expect(back.cdbOrSense[0..<18] == request.cdbOrSense[0..<18] && back.srbFlags == 0 && back.cdbOrSense[18] == 0)
        #expect(request.cdb == Array(1...10))
        #expect(VMSCSIRequest(cdbLength: 17).cdb == nil && VMSCSIRequest(cdbLength: 0).cdb == nil)
    }

    @Test func versionsSayTheirRequestAndSenseSizes() {
        #expect(StorageProtocolVersion.supported.map(\.rawValue) == [0x602, 0x600, 0x501, 0x402, 0x200])
        #expect(StorageProtocolVersion.win8.requestSize == 0x34 && StorageProtocolVersion.win8.senseBufferSize == 0x14)
        #expect(StorageProtocolVersion.win7.requestSize == 0x24 && StorageProtocolVersion.win7.senseBufferSize == 0x12)
        #expect(!StorageProtocolVersion.win7.supportsMultiChannel && StorageProtocolVersion.win10.supportsMultiChannel)
        #expect(ProtocolVersionQuery(version: .win10).encode() == [0x02, 0x06, 0, 0])
    }

    @Test func channelPropertiesAre24BytesWithLinuxsOffsets() {
        let bytes = ChannelProperties(maxSubChannels: 7, flags: 1, maxTransferBytes: 0x80000).encode()
        #expect(bytes.count == 24)
        #expect(bytes[4...5] == [7, 0] && bytes[8] == 1 && bytes[12...15] == [0, 0, 8, 0])
        #expect(ChannelProperties(union: bytes).maxTransferBytes == 0x80000)
    }

    @Test func statusCodes() {
        #expect(SRBStatus.error.wireValue(autosense: true) == 0x84)
        #expect(SRBStatus.invalidLUN.rawValue == 0x20 && SRBStatus.dataOverrun.rawValue == 0x12)
        #expect(NTStatus.revisionMismatch.rawValue == 0xC000_0059)
        #expect(NTStatus(srb: .success) == .success && NTStatus(srb: .invalidLUN).rawValue == 0xC000_00C0)
    }

    @Test func fixedSenseData() {
        let bytes = SenseData(.illegalRequest, .lbaOutOfRange, information: 0x1234).encode()
        #expect(bytes.count == 18 && bytes[0] == 0xF0 && bytes[2] == 5 && bytes[7] == 10 && bytes[12] == 0x21 && bytes[13] == 0)
        #expect(bytes[3...6] == [0, 0, 0x12, 0x34])
        #expect(SenseData.decode(bytes) == SenseData(.illegalRequest, .lbaOutOfRange, information: 0x1234))
    }

    @Test func standardInquiryLayout() {
        let bytes = StandardInquiryData(deviceType: .directAccess, vendor: "Msft", product: "Virtual Disk", revision: "1.0").encode()
        #expect(bytes.count == 36 && bytes[0] == 0 && bytes[2] == 5 && bytes[3] & 0x0F == 2 && bytes[4] == 31)
        #expect(String(decoding: bytes[8..<16], as: UTF8.self) == "Msft    ")
        #expect(String(decoding: bytes[16..<32], as: UTF8.self) == "Virtual Disk    ")
        #expect(StandardInquiryData.absentLUN()[0] == 0x7F)
    }

    @Test func capacityAndLUNData() {
        #expect(ReadCapacity10Data(blocks: 0x1_0000_0001, blockLength: 512).encode() == [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 2, 0])
        let rc16 = ReadCapacity16Data(blocks: 2048, blockLength: 512, logicalPerPhysicalExponent: 3, provisioningEnabled: true, readsZeros: false).encode()
        #expect(rc16.count == 32 && rc16[0...7] == [0, 0, 0, 0, 0, 0, 7, 0xFF] && rc16[13] == 3 && rc16[14] == 0x80)
        let luns = ReportLUNsData.encode(luns: [0, 5, 300])
        #expect(luns[0...3] == [0, 0, 0, 24] && luns[9] == 0 && luns[17] == 5 && luns[24...25] == [0x41, 0x2C])
        #expect(ReportLUNsData.decode(luns) == [0, 5, 300])
    }

    @Test func unmapParameterListBounds() throws {
        let list = UnmapParameterList(descriptors: [.init(lba: 8, blocks: 16), .init(lba: 100, blocks: 1)])
        let bytes = list.encode()
        #expect(bytes.count == 40 && bytes[0...3] == [0, 38, 0, 32])
        #expect(try UnmapParameterList.decode(bytes) == list)
        var lying = bytes
        lying[3] = 48   // descriptor length past the bytes sent
        #expect(throws: UnmapParameterList.DecodeError.lengthMismatch) { try UnmapParameterList.decode(lying) }
        lying = bytes
        lying[3] = 17   // not whole descriptors
        #expect(throws: UnmapParameterList.DecodeError.lengthMismatch) { try UnmapParameterList.decode(lying) }
        #expect(throws: UnmapParameterList.DecodeError.lengthMismatch) { try UnmapParameterList.decode([0, 6]) }
    }

    @Test func modeParameterHeaders() {
        let list = ModeParameterList(writeProtected: true, dpoFua: true, blockDescriptor: (blocks: 100, blockLength: 512),
                                     pages: ModePage.cachingPage(writeCacheEnabled: true))
        let six = list.encode6()
        #expect(six.count == 4 + 8 + 20 && six[0] == UInt8(six.count - 1) && six[2] == 0x90 && six[3] == 8)
        #expect(six[4 + 5...4 + 7] == [0, 2, 0] && six[12] == 0x08 && six[13] == 0x12 && six[14] == 0x04)
        let ten = list.encode10()
        #expect(ten.count == 8 + 8 + 20 && ten[0...1] == [0, UInt8(ten.count - 2)] && ten[3] == 0x90 && ten[6...7] == [0, 8])
        #expect(ModePage.controlPage().count == 12 && ModePage.cdCapabilitiesPage()[1] == 0x1A)
    }

    @Test func vpdPages() {
        #expect(VPDPage.supportedPagesPage(peripheral: 0, pages: [0xB2, 0x80, 0x83]) == [0, 0, 0, 4, 0x00, 0x80, 0x83, 0xB2])
        #expect(VPDPage.unitSerialNumberPage(peripheral: 0, serial: "AB\u{1}C") == [0, 0x80, 0, 3, 0x41, 0x42, 0x43])
        let naa = Designator.naaRegisteredExtended([UInt8](repeating: 0xFF, count: 16)).encode()
        #expect(naa[0...3] == [1, 3, 0, 16] && naa[4] == 0x6F)
        let limits = BlockLimitsPage(maximumTransferLength: 1024, optimalTransferLength: 1024, optimalTransferLengthGranularity: 8,
                                     maximumUnmapLBACount: 0x400000, maximumUnmapBlockDescriptorCount: 256, optimalUnmapGranularity: 8,
                                     maximumWriteSameLength: 0x400000).encode(peripheral: 0)
        #expect(limits.count == 64 && limits[3] == 0x3C && limits[8...11] == [0, 0, 4, 0] && limits[20...23] == [0, 0x40, 0, 0])
        let provisioning = LogicalBlockProvisioningPage(unmapSupported: true, writeSame16UnmapSupported: true,
                                                        writeSame10UnmapSupported: false, readsZeros: false, provisioningType: 2)
        #expect(provisioning.encode(peripheral: 0) == [0, 0xB2, 0, 4, 0, 0xC0, 2, 0])
    }
}

/// CDB decoding of every command the target implements.
@Suite("SCSI CDB decoding")
struct SCSICommandDecodingTests {
    @Test func readsAndWritesOfEverySize() throws {
        #expect(try SCSICommand.decode([0x08, 0x1F, 0xFF, 0xFF, 0, 0]) == .read(BlockTransfer(lba: 0x1F_FFFF, blocks: 256, fua: false, cdbSize: 6)))
        #expect(try SCSICommand.decode([0x2A, 0x08, 0, 0, 1, 0, 0, 0, 8, 0]) == .write(BlockTransfer(lba: 256, blocks: 8, fua: true, cdbSize: 10)))
        #expect(try SCSICommand.decode([0xA8, 0, 0, 0, 0, 9, 0, 1, 0, 0, 0, 0]) == .read(BlockTransfer(lba: 9, blocks: 0x10000, fua: false, cdbSize: 12)))
        let r16: [UInt8] = [0x88, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0]
        #expect(try SCSICommand.decode(r16) == .read(BlockTransfer(lba: 1 << 32, blocks: 4, fua: false, cdbSize: 16)))
        #expect(throws: CDBError.invalidField(opcode: 0x28, byte: 1)) { try SCSICommand.decode([0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0]) }
        #expect(throws: CDBError.tooShort(opcode: 0x88, needed: 16, length: 10)) { try SCSICommand.decode(Array(r16.prefix(10))) }
    }

    @Test func theOtherCommands() throws {
        #expect(try SCSICommand.decode([0, 0, 0, 0, 0, 0]) == .testUnitReady)
        #expect(try SCSICommand.decode([0x03, 0, 0, 0, 18, 0]) == .requestSense(allocationLength: 18, descriptorFormat: false))
        #expect(try SCSICommand.decode([0x12, 1, 0x83, 0, 0xFF, 0]) == .inquiry(vitalProductData: true, page: 0x83, allocationLength: 255))
        #expect(throws: CDBError.invalidField(opcode: 0x12, byte: 2)) { try SCSICommand.decode([0x12, 0, 0x83, 0, 0xFF, 0]) }
        #expect(try SCSICommand.decode([0x1A, 0x08, 0x3F, 0, 192, 0]) == .modeSense(ModeSenseRequest(
            tenByte: false, disableBlockDescriptors: true, longLBA: false, pageControl: .current, page: 0x3F, subpage: 0, allocationLength: 192)))
        #expect(try SCSICommand.decode([0x5A, 0, 0x48, 0, 0, 0, 0, 1, 0, 0]) == .modeSense(ModeSenseRequest(
            tenByte: true, disableBlockDescriptors: false, longLBA: false, pageControl: .changeable, page: 8, subpage: 0, allocationLength: 256)))
        #expect(try SCSICommand.decode([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]) == .readCapacity10)
        #expect(try SCSICommand.decode([0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]) == .readCapacity16(allocationLength: 32))
        #expect(try SCSICommand.decode([0x35, 2, 0, 0, 0, 5, 0, 0, 3, 0]) == .synchronizeCache(lba: 5, blocks: 3, immediate: true))
        #expect(try SCSICommand.decode([0x91, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0]) == .synchronizeCache(lba: 7, blocks: 1, immediate: false))
        #expect(try SCSICommand.decode([0x93, 0x09, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 8, 0, 0]) == .writeSame(WriteSameRequest(
            lba: 4, blocks: 8, unmap: true, anchor: false, noDataOut: true, tenByte: false)))
        #expect(try SCSICommand.decode([0x41, 0x08, 0, 0, 0, 4, 0, 0, 8, 0]) == .writeSame(WriteSameRequest(
            lba: 4, blocks: 8, unmap: true, anchor: false, noDataOut: false, tenByte: true)))
        #expect(try SCSICommand.decode([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0]) == .unmap(parameterListLength: 24, anchor: false))
        #expect(try SCSICommand.decode([0xA0, 0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0]) == .reportLUNs(selectReport: 2, allocationLength: 256))
        #expect(try SCSICommand.decode([0x1B, 1, 0, 0, 0x03, 0]) == .startStopUnit(immediate: true, powerCondition: 0, loadEject: true, start: true))
        #expect(try SCSICommand.decode([0x43, 2, 0, 0, 0, 0, 1, 0, 12, 0]) == .readTOC(msf: true, format: 0, track: 1, allocationLength: 12))
        #expect(try SCSICommand.decode([0x46, 2, 0, 0x10, 0, 0, 0, 0, 8, 0]) == .getConfiguration(requestType: 2, startingFeature: 0x10, allocationLength: 8))
        #expect(try SCSICommand.decode([0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0]) == .getEventStatusNotification(polled: true, classRequest: 0x10, allocationLength: 8))
        #expect(try SCSICommand.decode([0xC0, 1]) == .unsupported(opcode: 0xC0))
        #expect(throws: CDBError.empty) { try SCSICommand.decode([]) }
        #expect(throws: CDBError.invalidField(opcode: 0x9E, byte: 1)) { try SCSICommand.decode([0x9E, 0x11] + [UInt8](repeating: 0, count: 14)) }
    }
}
