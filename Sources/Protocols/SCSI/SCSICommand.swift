/// A decoded CDB: the fields a target acts on, with every length and address widened to UInt64
/// so that range checks cannot overflow.
public enum SCSICommand: Sendable, Equatable {
    case testUnitReady
    case requestSense(allocationLength: Int, descriptorFormat: Bool)
    case inquiry(vitalProductData: Bool, page: UInt8, allocationLength: Int)
    case modeSense(ModeSenseRequest)
    case modeSelect(tenByte: Bool, parameterListLength: Int, savePages: Bool)
    case startStopUnit(immediate: Bool, powerCondition: UInt8, loadEject: Bool, start: Bool)
    case preventAllowMediumRemoval(prevent: Bool)
    case readCapacity10
    case readCapacity16(allocationLength: Int)
    case read(BlockTransfer)
    case write(BlockTransfer)
    case verify(lba: UInt64, blocks: UInt64, byteCheck: UInt8)
    /// `blocks` 0: to the end of the medium.
    case synchronizeCache(lba: UInt64, blocks: UInt64, immediate: Bool)
    case writeSame(WriteSameRequest)
    case unmap(parameterListLength: Int, anchor: Bool)
    case reportLUNs(selectReport: UInt8, allocationLength: Int)
    case readTOC(msf: Bool, format: UInt8, track: UInt8, allocationLength: Int)
    case getConfiguration(requestType: UInt8, startingFeature: UInt16, allocationLength: Int)
    case getEventStatusNotification(polled: Bool, classRequest: UInt8, allocationLength: Int)
    /// An operation code this decoder does not know: INVALID COMMAND OPERATION CODE.
    case unsupported(opcode: UInt8)
}

/// READ/WRITE of any size.
public struct BlockTransfer: Sendable, Equatable {
    public var lba: UInt64
    public var blocks: UInt64
    /// Force unit access: the data must be on stable storage before the command completes.
    public var fua: Bool
    /// 6, 10, 12 or 16.
    public var cdbSize: Int
    public init(lba: UInt64, blocks: UInt64, fua: Bool, cdbSize: Int) {
        self.lba = lba
        self.blocks = blocks
        self.fua = fua
        self.cdbSize = cdbSize
    }
}

public struct WriteSameRequest: Sendable, Equatable {
    public var lba: UInt64
    public var blocks: UInt64
    /// UNMAP bit: the blocks may be deallocated (they must then read as the pattern: zeros).
    public var unmap: Bool
    public var anchor: Bool
    /// No data-out buffer: the pattern is zeros (WRITE SAME(16) only).
    public var noDataOut: Bool
    public var tenByte: Bool
    public init(lba: UInt64, blocks: UInt64, unmap: Bool, anchor: Bool, noDataOut: Bool, tenByte: Bool) {
        self.lba = lba
        self.blocks = blocks
        self.unmap = unmap
        self.anchor = anchor
        self.noDataOut = noDataOut
        self.tenByte = tenByte
    }
}

public struct ModeSenseRequest: Sendable, Equatable {
    public enum PageControl: UInt8, Sendable {
        case current = 0, changeable = 1, defaults = 2, saved = 3
    }
    public var tenByte: Bool
    public var disableBlockDescriptors: Bool
    public var longLBA: Bool
    public var pageControl: PageControl
    public var page: UInt8
    public var subpage: UInt8
    public var allocationLength: Int
    public init(tenByte: Bool, disableBlockDescriptors: Bool, longLBA: Bool, pageControl: PageControl, page: UInt8, subpage: UInt8, allocationLength: Int) {
        self.tenByte = tenByte
        self.disableBlockDescriptors = disableBlockDescriptors
        self.longLBA = longLBA
        self.pageControl = pageControl
        self.page = page
        self.subpage = subpage
        self.allocationLength = allocationLength
    }
}

/// Why a CDB cannot be decoded. Each maps to ILLEGAL REQUEST sense.
public enum CDBError: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    /// The CDB is shorter than its operation code's group requires.
    case tooShort(opcode: UInt8, needed: Int, length: Int)
    /// A field holds a value this target does not support (byte offset in the CDB).
    case invalidField(opcode: UInt8, byte: Int)

    public var sense: SenseData {
        switch self {
        case .empty, .tooShort: SenseData(.illegalRequest, .invalidCommandOperationCode)
        case .invalidField: SenseData(.illegalRequest, .invalidFieldInCDB)
        }
    }

    public var description: String {
        switch self {
        case .empty: "empty CDB"
        case .tooShort(let op, let needed, let length): "CDB for opcode 0x\(String(op, radix: 16)) has \(length) bytes, needs \(needed)"
        case .invalidField(let op, let byte): "invalid field in byte \(byte) of the CDB for opcode 0x\(String(op, radix: 16))"
        }
    }
}

extension SCSICommand {
    /// Decodes a CDB. Only the bytes given are read; anything the command does not support
    /// (protection information, obsolete bits) is refused rather than ignored.
    public static func decode(_ cdb: [UInt8]) throws(CDBError) -> SCSICommand {
        guard let opcode = cdb.first else { throw .empty }
        if let needed = SCSIOpcode.cdbLength(of: opcode), cdb.count < needed {
            throw .tooShort(opcode: opcode, needed: needed, length: cdb.count)
        }
        func invalid(_ byte: Int) -> CDBError { .invalidField(opcode: opcode, byte: byte) }
        let b1 = cdb.be(UInt8.self, at: 1)

        switch opcode {
        case SCSIOpcode.testUnitReady:
            return .testUnitReady
        case SCSIOpcode.requestSense:
            return .requestSense(allocationLength: Int(cdb.be(UInt8.self, at: 4)), descriptorFormat: b1 & 0x01 != 0)
        case SCSIOpcode.inquiry:
            // CMDDT (bit 1) is obsolete; a page code without EVPD is invalid.
            if b1 & 0x02 != 0 { throw invalid(1) }
            let evpd = b1 & 0x01 != 0
            let page = cdb.be(UInt8.self, at: 2)
            if !evpd && page != 0 { throw invalid(2) }
            return .inquiry(vitalProductData: evpd, page: page, allocationLength: Int(cdb.be(UInt16.self, at: 3)))
        case SCSIOpcode.modeSense6, SCSIOpcode.modeSense10:
            let ten = opcode == SCSIOpcode.modeSense10
            let b2 = cdb.be(UInt8.self, at: 2)
            return .modeSense(ModeSenseRequest(
                tenByte: ten, disableBlockDescriptors: b1 & 0x08 != 0, longLBA: ten && b1 & 0x10 != 0,
                pageControl: ModeSenseRequest.PageControl(rawValue: b2 >> 6) ?? .current, page: b2 & 0x3F,
                subpage: cdb.be(UInt8.self, at: 3),
                allocationLength: ten ? Int(cdb.be(UInt16.self, at: 7)) : Int(cdb.be(UInt8.self, at: 4))))
        case SCSIOpcode.modeSelect6:
            return .modeSelect(tenByte: false, parameterListLength: Int(cdb.be(UInt8.self, at: 4)), savePages: b1 & 0x01 != 0)
        case SCSIOpcode.modeSelect10:
            return .modeSelect(tenByte: true, parameterListLength: Int(cdb.be(UInt16.self, at: 7)), savePages: b1 & 0x01 != 0)
        case SCSIOpcode.startStopUnit:
            let b4 = cdb.be(UInt8.self, at: 4)
            return .startStopUnit(immediate: b1 & 0x01 != 0, powerCondition: b4 >> 4, loadEject: b4 & 0x02 != 0, start: b4 & 0x01 != 0)
        case SCSIOpcode.preventAllowMediumRemoval:
            return .preventAllowMediumRemoval(prevent: cdb.be(UInt8.self, at: 4) & 0x03 != 0)
        case SCSIOpcode.readCapacity10:
            return .readCapacity10
        case SCSIOpcode.serviceActionIn16:
            guard b1 & 0x1F == SCSIOpcode.readCapacity16ServiceAction else { throw invalid(1) }
            return .readCapacity16(allocationLength: Int(cdb.be(UInt32.self, at: 10)))
        case SCSIOpcode.read6, SCSIOpcode.write6:
            // 21-bit LBA; a transfer length of 0 means 256 blocks.
            let lba = UInt64(cdb.be24(at: 1) & 0x1F_FFFF)
            let count = cdb.be(UInt8.self, at: 4)
            let transfer = BlockTransfer(lba: lba, blocks: count == 0 ? 256 : UInt64(count), fua: false, cdbSize: 6)
            return opcode == SCSIOpcode.read6 ? .read(transfer) : .write(transfer)
        case SCSIOpcode.read10, SCSIOpcode.write10, SCSIOpcode.read12, SCSIOpcode.write12,
             SCSIOpcode.read16, SCSIOpcode.write16:
            // RDPROTECT/WRPROTECT: this target has no protection information.
            if b1 & 0xE0 != 0 { throw invalid(1) }
            let transfer: BlockTransfer
            switch opcode {
            case SCSIOpcode.read10, SCSIOpcode.write10:
                transfer = BlockTransfer(lba: UInt64(cdb.be(UInt32.self, at: 2)), blocks: UInt64(cdb.be(UInt16.self, at: 7)),
                                         fua: b1 & 0x08 != 0, cdbSize: 10)
            case SCSIOpcode.read12, SCSIOpcode.write12:
                transfer = BlockTransfer(lba: UInt64(cdb.be(UInt32.self, at: 2)), blocks: UInt64(cdb.be(UInt32.self, at: 6)),
                                         fua: b1 & 0x08 != 0, cdbSize: 12)
            default:
                transfer = BlockTransfer(lba: cdb.be(UInt64.self, at: 2), blocks: UInt64(cdb.be(UInt32.self, at: 10)),
                                         fua: b1 & 0x08 != 0, cdbSize: 16)
            }
            let isRead = opcode == SCSIOpcode.read10 || opcode == SCSIOpcode.read12 || opcode == SCSIOpcode.read16
            return isRead ? .read(transfer) : .write(transfer)
        case SCSIOpcode.verify10:
            if b1 & 0xE0 != 0 { throw invalid(1) }
            return .verify(lba: UInt64(cdb.be(UInt32.self, at: 2)), blocks: UInt64(cdb.be(UInt16.self, at: 7)), byteCheck: (b1 >> 1) & 0x03)
        case SCSIOpcode.verify16:
            if b1 & 0xE0 != 0 { throw invalid(1) }
            return .verify(lba: cdb.be(UInt64.self, at: 2), blocks: UInt64(cdb.be(UInt32.self, at: 10)), byteCheck: (b1 >> 1) & 0x03)
        case SCSIOpcode.synchronizeCache10:
            return .synchronizeCache(lba: UInt64(cdb.be(UInt32.self, at: 2)), blocks: UInt64(cdb.be(UInt16.self, at: 7)), immediate: b1 & 0x02 != 0)
        case SCSIOpcode.synchronizeCache16:
            return .synchronizeCache(lba: cdb.be(UInt64.self, at: 2), blocks: UInt64(cdb.be(UInt32.self, at: 10)), immediate: b1 & 0x02 != 0)
        case SCSIOpcode.writeSame10, SCSIOpcode.writeSame16:
            if b1 & 0xE0 != 0 { throw invalid(1) }
            let ten = opcode == SCSIOpcode.writeSame10
            if ten && b1 & 0x01 != 0 { throw invalid(1) }
            return .writeSame(WriteSameRequest(
                lba: ten ? UInt64(cdb.be(UInt32.self, at: 2)) : cdb.be(UInt64.self, at: 2),
                blocks: ten ? UInt64(cdb.be(UInt16.self, at: 7)) : UInt64(cdb.be(UInt32.self, at: 10)),
                unmap: b1 & 0x08 != 0, anchor: b1 & 0x10 != 0, noDataOut: !ten && b1 & 0x01 != 0, tenByte: ten))
        case SCSIOpcode.unmap:
            return .unmap(parameterListLength: Int(cdb.be(UInt16.self, at: 7)), anchor: b1 & 0x01 != 0)
        case SCSIOpcode.reportLUNs:
            return .reportLUNs(selectReport: cdb.be(UInt8.self, at: 2), allocationLength: Int(cdb.be(UInt32.self, at: 6)))
        case SCSIOpcode.readTOC:
            return .readTOC(msf: b1 & 0x02 != 0, format: cdb.be(UInt8.self, at: 2) & 0x0F, track: cdb.be(UInt8.self, at: 6),
                            allocationLength: Int(cdb.be(UInt16.self, at: 7)))
        case SCSIOpcode.getConfiguration:
            return .getConfiguration(requestType: b1 & 0x03, startingFeature: cdb.be(UInt16.self, at: 2),
                                     allocationLength: Int(cdb.be(UInt16.self, at: 7)))
        case SCSIOpcode.getEventStatusNotification:
            return .getEventStatusNotification(polled: b1 & 0x01 != 0, classRequest: cdb.be(UInt8.self, at: 4),
                                               allocationLength: Int(cdb.be(UInt16.self, at: 7)))
        default:
            return .unsupported(opcode: opcode)
        }
    }
}
