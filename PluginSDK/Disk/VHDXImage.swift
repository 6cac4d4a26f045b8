import Synchronization
import VHDXFormat

/// A VHDX image ([MS-VHDX]): fixed, dynamic or differencing (with its parent chain opened
/// read-only). Metadata (BAT, sector bitmaps) lives in memory behind one lock; every change to
/// it goes through the log before it is written in place, so a crash at any point leaves a
/// file whose replay gives either the old or the new metadata. Discard keeps blocks allocated
/// (supportsDiscard is false): the data stays readable, which the contract allows.
public final class VHDXImage: DiskImage {
    public enum DiskType: String, Sendable, CaseIterable {
        case fixed, dynamic, differencing
    }

    public let path: String
    public let geometry: DiskGeometry
    public let isReadOnly: Bool
    public var supportsDiscard: Bool { false }
    public var dataFiles: [DiskDataFile] {
        [DiskDataFile(fd: file.fd, path: path, writable: !isReadOnly)] + (parent?.dataFiles.map {
            DiskDataFile(fd: $0.fd, path: $0.path, writable: false)
        } ?? [])
    }

    public let type: DiskType
    public let blockSize: UInt32
    /// The virtual disk ID (what SCSI VPD page 0x83 reports).
    public let virtualDiskID: VHDXGUID
    /// The parent of a differencing disk, opened read-only.
    public let parent: VHDXImage?
    public let parentLocator: VHDXParentLocator?
    /// How many log entries the open replayed (0: the log was clean).
    public let replayedLogEntries: Int
    /// The creator string of the file identifier.
    public let creator: String

    let file: HostFile
    let layout: VHDXBATGeometry
    let batOffset: UInt64
    /// Where nothing may be allocated: the first MiB, the log, the BAT and metadata regions.
    let reservedRanges: [(start: UInt64, end: UInt64)]
    /// BAT, bitmaps, allocation: what readers and mappers look up, held only for lookups.
    let state: Mutex<VHDXState>
    /// Headers and log: held by whoever publishes metadata, across its writes and flushes, so
    /// publishers run one at a time while lookups go on. Taken before `state`, never after.
    let journal: Mutex<VHDXJournal>
    /// Set once this session's new FileWriteGuid/DataWriteGuid are on disk (skips the journal lock).
    let guidsWritten = Atomic<Bool>(false)

    /// The header a child's parent_linkage must name.
    public var dataWriteGUID: VHDXGUID { journal.withLock { $0.header.dataWriteGUID } }

    /// Payload bytes the file holds (fully or partially present blocks), and sector bitmaps.
    public var allocatedBytes: UInt64 {
        state.withLock { s in
            var total: UInt64 = 0
            for block in 0..<layout.payloadBlocks {
                let e = VHDXBATEntry(raw: s.bat[Int(layout.payloadEntryIndex(block: block))])
                if e.state == .fullyPresent || e.state == .partiallyPresent { total += layout.blockSize }
            }
            if layout.hasParent {
                for chunk in 0..<layout.sectorBitmapBlocks where VHDXBATEntry(raw: s.bat[Int(layout.sectorBitmapEntryIndex(chunk: chunk))]).state == .fullyPresent {
                    total += VHDXLayout.sectorBitmapBlockSize
                }
            }
            return total
        }
    }

    init(file: HostFile, readOnly: Bool, geometry: DiskGeometry, type: DiskType, blockSize: UInt32, virtualDiskID: VHDXGUID,
         parent: VHDXImage?, parentLocator: VHDXParentLocator?, replayed: Int, creator: String, layout: VHDXBATGeometry,
         batOffset: UInt64, reservedRanges: [(start: UInt64, end: UInt64)], state: VHDXState, journal: VHDXJournal) {
        self.file = file
        self.path = file.path
        self.isReadOnly = readOnly
        self.geometry = geometry
        self.type = type
        self.blockSize = blockSize
        self.virtualDiskID = virtualDiskID
        self.parent = parent
        self.parentLocator = parentLocator
        self.replayedLogEntries = replayed
        self.creator = creator
        self.layout = layout
        self.batOffset = batOffset
        self.reservedRanges = reservedRanges
        self.state = Mutex(state)
        self.journal = Mutex(journal)
    }

    deinit {
        try? close()
        file.close()
    }

    /// Ends the session: clears the log GUID (every entry is already applied and flushed) so
    /// other tools see a clean file, and drops the file lock. Writes after this are refused.
    /// Idempotent.
    public func close() throws(DiskError) {
        defer { if !isReadOnly { file.unlock() } }
        try journal.withLock { (j: inout VHDXJournal) throws(DiskError) in
            let (wasClosed, failed) = state.withLock { s in
                defer { s.closed = true }
                return (s.closed, s.failure != nil)
            }
            guard !wasClosed, !isReadOnly, !failed, !j.header.logGUID.isZero else { return }
            try file.sync()
            var header = j.header
            header.logGUID = .zero
            try writeHeaders(&j, header)
        }
    }


    private func checkRange(_ offset: UInt64, _ length: UInt64) throws(DiskError) {
        guard offset <= geometry.virtualSize, length <= geometry.virtualSize - offset else {
            throw DiskError(.invalidRequest, path: path, "range \(offset)+\(length) is outside the \(geometry.virtualSize)-byte disk")
        }
    }

    // MARK: Reads

    public func mapForRead(offset: UInt64, length: UInt64) throws(DiskError) -> [DiskExtent] {
        try checkRange(offset, length)
        // Pieces of the range: our file, zeros, or the parent's (mapped after the lock is dropped).
        enum Piece { case extent(DiskExtent), parent(offset: UInt64, length: UInt64) }
        let pieces: [Piece] = try state.withLock { (s: inout VHDXState) throws(DiskError) -> [Piece] in
            var pieces: [Piece] = []
            var at = offset
            let end = offset + length
            while at < end {
                let block = at / layout.blockSize
                let inBlock = at % layout.blockSize
                let run = min(end - at, layout.blockSize - inBlock)
                let entry = VHDXBATEntry(raw: s.bat[Int(layout.payloadEntryIndex(block: block))])
                switch entry.state {
                case .fullyPresent:
                    pieces.append(.extent(.file(fd: file.fd, offset: entry.fileOffset + inBlock, length: run)))
                case .partiallyPresent:
                    let sector = layout.logicalSectorSize
                    var sub = at
                    while sub < at + run {
                        let present = try isSectorPresent(&s, sub / sector)
                        var next = sub + sector
                        while next < at + run, try isSectorPresent(&s, next / sector) == present { next += sector }
                        next = min(next, at + run)  // a range not on sector boundaries still maps exactly
                        if present {
                            pieces.append(.extent(.file(fd: file.fd, offset: entry.fileOffset + (sub - block * layout.blockSize), length: next - sub)))
                        } else {
                            pieces.append(.parent(offset: sub, length: next - sub))
                        }
                        sub = next
                    }
                case .notPresent, .undefined, .none:
                    pieces.append(parent != nil ? .parent(offset: at, length: run) : .extent(.zero(length: run)))
                case .zero, .unmapped:
                    pieces.append(.extent(.zero(length: run)))
                }
                at += run
            }
            return pieces
        }
        var extents: [DiskExtent] = []
        for piece in pieces {
            switch piece {
            case .extent(let e): append(e, to: &extents)
            case .parent(let o, let l):
                guard let parent else { append(.zero(length: l), to: &extents); continue }
                for e in try parent.mapForRead(offset: o, length: l) { append(e, to: &extents) }
            }
        }
        return extents
    }

    /// Appends, merging with the previous extent when they are contiguous.
    private func append(_ e: DiskExtent, to extents: inout [DiskExtent]) {
        guard e.length > 0 else { return }
        switch (extents.last, e) {
        case (.zero(let a)?, .zero(let b)):
            extents[extents.count - 1] = .zero(length: a + b)
        case (.file(let fa, let oa, let la)?, .file(let fb, let ob, let lb)) where fa == fb && oa + la == ob:
            extents[extents.count - 1] = .file(fd: fa, offset: oa, length: la + lb)
        default:
            extents.append(e)
        }
    }

    /// The sector bitmap bit of a virtual-disk sector (least significant bit first in each byte).
    func isSectorPresent(_ s: inout VHDXState, _ sector: UInt64) throws(DiskError) -> Bool {
        let perChunk = VHDXLayout.sectorsPerChunk
        let bitmap = try sectorBitmap(&s, chunk: sector / perChunk)
        let bit = sector % perChunk
        return bitmap[Int(bit / 8)] & (1 << (bit % 8)) != 0
    }

    /// A chunk's sector bitmap, read on first use (all zero while its block is not present).
    func sectorBitmap(_ s: inout VHDXState, chunk: UInt64) throws(DiskError) -> [UInt8] {
        if let b = s.bitmaps[chunk] { return b }
        let entry = VHDXBATEntry(raw: s.bat[Int(layout.sectorBitmapEntryIndex(chunk: chunk))])
        let bitmap = entry.state == .fullyPresent
            ? try file.read(at: entry.fileOffset, count: Int(VHDXLayout.sectorBitmapBlockSize))
            : [UInt8](repeating: 0, count: Int(VHDXLayout.sectorBitmapBlockSize))
        s.bitmaps[chunk] = bitmap
        return bitmap
    }

    public func discard(offset: UInt64, length: UInt64) throws(DiskError) {
        guard !isReadOnly else { throw DiskError(.invalidRequest, path: path, "discard on a read-only disk") }
        try checkRange(offset, length)
    }

    /// Every metadata change is durable when completeWrite returns (log written, flushed,
    /// applied, flushed): nothing is left to do here but report an earlier failure.
    public func flush() throws(DiskError) {
        if let failure = state.withLock({ $0.failure }) { throw failure }
    }
}

/// What the journal lock guards: the headers and where the log goes on.
struct VHDXJournal: Sendable {
    var header: VHDXHeader
    /// The slot (0 or 1) the current header is in.
    var headerSlot: Int
    /// True once this session has changed FileWriteGuid/DataWriteGuid.
    var wroteGUIDs = false
    var logSequence: UInt64 = 0
    /// Offset in the log of the next entry.
    var logHead: UInt64 = 0
}

/// What the state lock guards.
struct VHDXState: Sendable {
    /// The published BAT, payload and sector bitmap entries interleaved as on disk.
    var bat: [UInt64]
    /// Sector bitmaps read so far, by chunk.
    var bitmaps: [UInt64: [UInt8]] = [:]
    /// The next free 1 MiB-aligned offset: new blocks go here.
    var fileEnd: UInt64
    /// Blocks given to writes whose metadata is not published yet, by payload block number.
    var reserved: [UInt64: UInt64] = [:]
    /// A metadata write failed: the image refuses further writes (its file is still consistent).
    var failure: DiskError?
    var closed = false
}
