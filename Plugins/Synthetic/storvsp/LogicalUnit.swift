import SCSIProtocol
import VeneerDisk

/// One LUN as the guest sees it: a disk or a CD/DVD drive over a disk image. It turns a decoded
/// command into an answer or into disk work, and disk results into the final answer. Pure: no I/O
/// and no state that changes per command, so every channel can use it at once.
final class LogicalUnit: Sendable {
    enum Kind: String, Sendable {
        case disk
        case cdrom
    }

    /// The CD/DVD logical block size (MMC).
    static let cdBlockSize: UInt32 = 2048
    static let vendor = "Msft"
    static let diskProduct = "Virtual Disk"
    static let cdProduct = "Virtual DVD-ROM"
    static let revision = "1.0"
    /// Largest UNMAP / WRITE SAME in blocks, and UNMAP descriptors per command.
    static let maxUnmapBlocks: UInt32 = 0x40_0000
    static let maxUnmapDescriptors: UInt32 = 256

    let kind: Kind
    let lun: Int
    let target: Int
    /// nil: a CD/DVD drive without a medium.
    let image: (any DiskImage)?
    let readOnly: Bool
    let cache: DiskCacheMode
    let serial: String
    /// 16 bytes, stable for (controller instance, target, LUN).
    let naaIdentifier: [UInt8]
    let blockSize: UInt32
    let physicalBlockSize: UInt32
    let blocks: UInt64
    /// Bytes per command the controller advertised (VPD 0xB0's maximum transfer length).
    let maxTransferBytes: UInt32

    init(kind: Kind, target: Int, lun: Int, image: (any DiskImage)?, readOnly: Bool, cache: DiskCacheMode = .none, serial: String,
         naaIdentifier: [UInt8], maxTransferBytes: UInt32) {
        self.kind = kind
        self.target = target
        self.lun = lun
        self.image = image
        self.readOnly = kind == .cdrom || readOnly || (image?.isReadOnly ?? false)
        self.cache = cache
        self.serial = serial
        self.naaIdentifier = naaIdentifier
        self.maxTransferBytes = maxTransferBytes
        let geometry = image?.geometry
        if kind == .cdrom {
            blockSize = Self.cdBlockSize
            physicalBlockSize = Self.cdBlockSize
            blocks = (geometry?.virtualSize ?? 0) / UInt64(Self.cdBlockSize)
        } else {
            blockSize = max(geometry?.logicalBlockSize ?? 512, 1)
            physicalBlockSize = max(geometry?.physicalBlockSize ?? 512, max(geometry?.logicalBlockSize ?? 512, 1))
            blocks = (geometry?.virtualSize ?? 0) / UInt64(max(geometry?.logicalBlockSize ?? 512, 1))
        }
    }

    var mediumPresent: Bool { image != nil }
    var peripheral: UInt8 { kind == .cdrom ? PeripheralDeviceType.cdDVD.rawValue : PeripheralDeviceType.directAccess.rawValue }
    /// Discard works on this LUN (RC16 LBPME, VPD 0xB2 LBPU/LBPWS, UNMAP accepted).
    var canUnmap: Bool { kind == .disk && !readOnly && (image?.supportsDiscard ?? false) }
    /// The write cache the guest is told about: writable disks say WCE so that guests flush.
    var writeCacheEnabled: Bool { kind == .disk && !readOnly }

    // MARK: Commands

    /// `bufferLength`: the bytes the guest's data buffer holds (data_transfer_length, bounded by
    /// its segments). `parameterData`: the data-out bytes of commands that carry parameters
    /// (UNMAP, WRITE SAME), already copied from the guest.
    func plan(_ command: SCSICommand, bufferLength: Int, parameterData: [UInt8]) -> TargetPlan {
        switch command {
        case .testUnitReady:
            return mediumPresent ? .reply(.good()) : .reply(.check(.notReady, .mediumNotPresent))
        case .requestSense(let allocation, _):
            // Sense is always delivered with the failing command (autosense), so nothing is pending.
            return .reply(.dataIn(SenseData(.noSense, .none).encode(), allocation: allocation, buffer: bufferLength))
        case .inquiry(let evpd, let page, let allocation):
            return .reply(inquiry(evpd: evpd, page: page, allocation: allocation, buffer: bufferLength))
        case .modeSense(let request):
            return .reply(modeSense(request, buffer: bufferLength))
        case .startStopUnit, .preventAllowMediumRemoval:
            return .reply(.good())
        case .readCapacity10:
            guard mediumPresent else { return .reply(.check(.notReady, .mediumNotPresent)) }
            return .reply(.dataIn(ReadCapacity10Data(blocks: blocks, blockLength: blockSize).encode(),
                                  allocation: ReadCapacity10Data.size, buffer: bufferLength))
        case .readCapacity16(let allocation):
            guard mediumPresent else { return .reply(.check(.notReady, .mediumNotPresent)) }
            let exponent = UInt8(max(0, (physicalBlockSize / blockSize).trailingZeroBitCount))
            let data = ReadCapacity16Data(blocks: blocks, blockLength: blockSize, logicalPerPhysicalExponent: exponent,
                                          provisioningEnabled: canUnmap, readsZeros: false)
            return .reply(.dataIn(data.encode(), allocation: allocation, buffer: bufferLength))
        case .read(let transfer):
            return transferPlan(transfer, isRead: true, bufferLength: bufferLength)
        case .write(let transfer):
            if kind == .cdrom { return .reply(.check(.illegalRequest, .invalidCommandOperationCode)) }
            return transferPlan(transfer, isRead: false, bufferLength: bufferLength)
        case .verify(let lba, let count, let byteCheck):
            guard mediumPresent else { return .reply(.check(.notReady, .mediumNotPresent)) }
            // Byte-by-byte comparison is not offered; a medium check always passes.
            guard byteCheck == 0 else { return .reply(.check(.illegalRequest, .invalidFieldInCDB)) }
            guard inRange(lba, count) else { return .reply(.check(.illegalRequest, .lbaOutOfRange)) }
            return .reply(.good())
        case .synchronizeCache(let lba, let count, _):
            guard kind == .disk else { return .reply(.good()) }
            guard count == 0 ? lba < max(blocks, 1) : inRange(lba, count) else {
                return .reply(.check(.illegalRequest, .lbaOutOfRange))
            }
            if readOnly { return .reply(.good()) }
            return .disk(DiskPlan(work: [DiskWork(kind: .flush, offset: 0, length: 0)], transferred: 0, lba: lba, isRead: false))
        case .writeSame(let request):
            return writeSame(request, parameterData: parameterData)
        case .unmap(let length, _):
            return unmap(parameterListLength: length, parameterData: parameterData)
        case .reportLUNs:
            // Answered by the target (it knows every LUN); a LUN never sees it.
            return .reply(.check(.illegalRequest, .invalidCommandOperationCode))
        case .readTOC(let msf, let format, let track, let allocation):
            guard kind == .cdrom else { return .reply(.check(.illegalRequest, .invalidCommandOperationCode)) }
            guard mediumPresent else { return .reply(.check(.notReady, .mediumNotPresent)) }
            guard let toc = MultiMediaData.tableOfContents(format: format, msf: msf, track: track, blocks: blocks) else {
                return .reply(.check(.illegalRequest, .invalidFieldInCDB))
            }
            return .reply(.dataIn(toc, allocation: allocation, buffer: bufferLength))
        case .getConfiguration(let type, let start, let allocation):
            guard kind == .cdrom else { return .reply(.check(.illegalRequest, .invalidCommandOperationCode)) }
            guard type <= 2 else { return .reply(.check(.illegalRequest, .invalidFieldInCDB)) }
            return .reply(.dataIn(MultiMediaData.configuration(requestType: type, startingFeature: start, mediumPresent: mediumPresent),
                                  allocation: allocation, buffer: bufferLength))
        case .getEventStatusNotification(let polled, let classes, let allocation):
            guard kind == .cdrom else { return .reply(.check(.illegalRequest, .invalidCommandOperationCode)) }
            // Asynchronous notification is not offered: only polled requests are valid.
            guard polled else { return .reply(.check(.illegalRequest, .invalidFieldInCDB)) }
            return .reply(.dataIn(MultiMediaData.eventStatus(classRequest: classes, mediumPresent: mediumPresent),
                                  allocation: allocation, buffer: bufferLength))
        case .modeSelect, .unsupported:
            return .reply(.check(.illegalRequest, .invalidCommandOperationCode))
        }
    }

    /// The answer once the plan's disk work finished (`failure`: the first error, if any).
    func finish(_ plan: DiskPlan, failure: DiskError?) -> SCSIReply {
        guard let failure else { return .good(transferred: plan.transferred) }
        let information = UInt32(truncatingIfNeeded: plan.lba)
        switch failure.kind {
        case .noSpace:
            return .check(.dataProtect, .spaceAllocationFailedWriteProtect, information: information)
        case .invalidRequest where readOnly:
            return .check(.dataProtect, .writeProtected)
        default:
            return .check(.mediumError, plan.isRead ? .unrecoveredReadError : .writeError, information: information)
        }
    }

    // MARK: Pieces

    private func inRange(_ lba: UInt64, _ count: UInt64) -> Bool {
        let (end, overflow) = lba.addingReportingOverflow(count)
        return !overflow && end <= blocks
    }

    private func transferPlan(_ transfer: BlockTransfer, isRead: Bool, bufferLength: Int) -> TargetPlan {
        guard mediumPresent else { return .reply(.check(.notReady, .mediumNotPresent)) }
        if !isRead && readOnly { return .reply(.check(.dataProtect, .writeProtected)) }
        guard inRange(transfer.lba, transfer.blocks) else {
            return .reply(.check(.illegalRequest, .lbaOutOfRange, information: UInt32(truncatingIfNeeded: transfer.lba)))
        }
        if transfer.blocks == 0 { return .reply(.good()) }
        let (bytes, overflow) = transfer.blocks.multipliedReportingOverflow(by: UInt64(blockSize))
        // The guest's buffer must hold the whole transfer (a short one would read or write past it).
        guard !overflow, bytes <= UInt64(bufferLength), bytes <= UInt64(Int.max) else {
            return .reply(.check(.illegalRequest, .invalidFieldInCDB))
        }
        let offset = transfer.lba * UInt64(blockSize)
        let work = DiskWork(kind: isRead ? .read : .write(fua: transfer.fua), offset: offset, length: bytes)
        return .disk(DiskPlan(work: [work], transferred: Int(bytes), lba: transfer.lba, isRead: isRead))
    }

    private func writeSame(_ request: WriteSameRequest, parameterData: [UInt8]) -> TargetPlan {
        guard kind == .disk else { return .reply(.check(.illegalRequest, .invalidCommandOperationCode)) }
        if readOnly { return .reply(.check(.dataProtect, .writeProtected)) }
        // WSNZ is set: zero blocks ("to the end") is refused, as is more than the advertised maximum.
        guard request.blocks > 0, request.blocks <= UInt64(Self.maxUnmapBlocks), !request.anchor else {
            return .reply(.check(.illegalRequest, .invalidFieldInCDB))
        }
        guard inRange(request.lba, request.blocks) else {
            return .reply(.check(.illegalRequest, .lbaOutOfRange, information: UInt32(truncatingIfNeeded: request.lba)))
        }
        if !request.noDataOut {
            // Only the zero pattern is implemented (what Linux and Windows send for write-zeroes
            // and discard); any other pattern is refused, never silently written as zeros.
            guard parameterData.count >= Int(blockSize) else { return .reply(.check(.illegalRequest, .parameterListLengthError)) }
            guard parameterData.prefix(Int(blockSize)).allSatisfy({ $0 == 0 }) else {
                return .reply(.check(.illegalRequest, .invalidFieldInParameterList))
            }
        }
        let offset = request.lba * UInt64(blockSize), length = request.blocks * UInt64(blockSize)
        // UNMAP asks that the blocks may be deallocated, but they must still read as zeros:
        // write-zeroes gives that on every format (the engine punches holes where it can).
        return .disk(DiskPlan(work: [DiskWork(kind: .writeZeroes, offset: offset, length: length)], transferred: 0,
                              lba: request.lba, isRead: false))
    }

    private func unmap(parameterListLength: Int, parameterData: [UInt8]) -> TargetPlan {
        guard canUnmap else {
            if kind == .disk && readOnly { return .reply(.check(.dataProtect, .writeProtected)) }
            return .reply(.check(.illegalRequest, .invalidCommandOperationCode))
        }
        if parameterListLength == 0 { return .reply(.good()) }
        guard parameterListLength >= UnmapParameterList.headerSize, parameterData.count >= parameterListLength else {
            return .reply(.check(.illegalRequest, .parameterListLengthError))
        }
        let list: UnmapParameterList
        do { list = try UnmapParameterList.decode(Array(parameterData.prefix(parameterListLength))) } catch {
            return .reply(.check(.illegalRequest, .parameterListLengthError))
        }
        guard list.descriptors.count <= Int(Self.maxUnmapDescriptors) else {
            return .reply(.check(.illegalRequest, .invalidFieldInParameterList))
        }
        var work: [DiskWork] = []
        var total: UInt64 = 0
        for d in list.descriptors where d.blocks > 0 {
            guard inRange(d.lba, UInt64(d.blocks)) else {
                return .reply(.check(.illegalRequest, .lbaOutOfRange, information: UInt32(truncatingIfNeeded: d.lba)))
            }
            total += UInt64(d.blocks)
            work.append(DiskWork(kind: .discard, offset: d.lba * UInt64(blockSize), length: UInt64(d.blocks) * UInt64(blockSize)))
        }
        guard total <= UInt64(Self.maxUnmapBlocks) else { return .reply(.check(.illegalRequest, .invalidFieldInParameterList)) }
        if work.isEmpty { return .reply(.good()) }
        return .disk(DiskPlan(work: work, transferred: 0, lba: list.descriptors.first?.lba ?? 0, isRead: false))
    }
}
