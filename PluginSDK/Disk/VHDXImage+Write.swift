import VHDXFormat

/// What a VHDX write publishes once its data is on disk (opaque to the engine).
struct VHDXPendingWrite: Sendable {
    struct Block: Sendable {
        var block: UInt64
        var fileOffset: UInt64
        /// Present in full once published (a dynamic disk's new block, or a write of the whole block).
        var full: Bool
    }
    /// Blocks reserved for this write whose BAT entries may still say not present.
    var blocks: [Block] = []
    /// Virtual-disk sectors [first, first + count) to mark present in a differencing disk's bitmap.
    var sectorRanges: [(first: UInt64, count: UInt64)] = []
}

extension VHDXImage {
    public func mapForWrite(offset: UInt64, length: UInt64) throws(DiskError) -> DiskWriteMapping {
        guard !isReadOnly else { throw DiskError(.invalidRequest, path: path, "write to a read-only disk") }
        guard offset <= geometry.virtualSize, length <= geometry.virtualSize - offset else {
            throw DiskError(.invalidRequest, path: path, "range \(offset)+\(length) is outside the \(geometry.virtualSize)-byte disk")
        }
        return try state.withLock { (s: inout VHDXState) throws(DiskError) -> DiskWriteMapping in
            if let failure = s.failure { throw failure }
            guard !s.closed else { throw DiskError(.invalidRequest, path: path, "write after close") }
            do throws(DiskError) { try prepareForWrites(&s) } catch { s.failure = error; throw error }
            var extents: [DiskExtent] = []
            var pending = VHDXPendingWrite()
            var at = offset
            let end = offset + length
            let sector = layout.logicalSectorSize
            while at < end {
                let block = at / layout.blockSize
                let inBlock = at % layout.blockSize
                let run = min(end - at, layout.blockSize - inBlock)
                let entry = VHDXBATEntry(raw: s.bat[Int(layout.payloadEntryIndex(block: block))])
                let base: UInt64
                switch entry.state {
                case .fullyPresent:
                    base = entry.fileOffset
                case .partiallyPresent:
                    base = entry.fileOffset
                    pending.sectorRanges.append((at / sector, (run + sector - 1) / sector))
                default:
                    let full = run == layout.blockSize
                    if let reserved = s.reserved[block] {
                        base = reserved
                    } else {
                        base = s.fileEnd
                        try file.setSize(base + layout.blockSize)  // zeros: what a new block must read as
                        s.fileEnd = base + layout.blockSize
                        s.reserved[block] = base
                    }
                    // A differencing disk keeps the parent's data for the rest of a block it only
                    // partly writes, unless the block read as zeros (zero/unmapped) before.
                    let inheritsParent = parent != nil && (entry.state == .notPresent || entry.state == .undefined || entry.state == nil)
                    pending.blocks.append(.init(block: block, fileOffset: base, full: full || !inheritsParent))
                    if inheritsParent && !full { pending.sectorRanges.append((at / sector, (run + sector - 1) / sector)) }
                }
                extents.append(.file(fd: file.fd, offset: base + inBlock, length: run))
                at += run
            }
            let publish = pending.blocks.isEmpty && pending.sectorRanges.isEmpty ? nil : pending
            return DiskWriteMapping(extents: extents, pending: publish)
        }
    }

    public func completeWrite(_ mapping: DiskWriteMapping, durable: Bool) throws(DiskError) {
        guard let any = mapping.pending else { return }
        guard let pending = any as? VHDXPendingWrite else {
            throw DiskError(.invalidRequest, path: path, "completeWrite with a mapping this image did not make")
        }
        try state.withLock { (s: inout VHDXState) throws(DiskError) in
            if let failure = s.failure { throw failure }
            var bat = s.bat
            var bitmaps: [UInt64: [UInt8]] = [:]
            var batSectors = Set<UInt64>()
            var bitmapSectors = Set<UInt64>()  // file offsets of changed 4 KiB bitmap sectors
            var fileEnd = s.fileEnd
            func setEntry(_ index: UInt64, _ entry: VHDXBATEntry) {
                bat[Int(index)] = entry.raw
                batSectors.insert(index * 8 / 4096)
            }
            do throws(DiskError) {
                for b in pending.blocks {
                    let index = layout.payloadEntryIndex(block: b.block)
                    let current = VHDXBATEntry(raw: bat[Int(index)])
                    if current.state == .fullyPresent { continue }
                    if current.state == .partiallyPresent && !b.full { continue }
                    setEntry(index, VHDXBATEntry(state: b.full ? .fullyPresent : .partiallyPresent, fileOffset: b.fileOffset))
                }
                for range in pending.sectorRanges {
                    var sector = range.first
                    while sector < range.first + range.count {
                        let chunk = sector / VHDXLayout.sectorsPerChunk
                        let block = sector * layout.logicalSectorSize / layout.blockSize
                        let blockState = VHDXBATEntry(raw: bat[Int(layout.payloadEntryIndex(block: block))]).state
                        let blockEndSector = (block + 1) * layout.sectorsPerBlock
                        let stop = min(range.first + range.count, blockEndSector)
                        defer { sector = stop }
                        guard blockState == .partiallyPresent else { continue }
                        var bitmap: [UInt8]
                        if let changed = bitmaps[chunk] { bitmap = changed } else { bitmap = try sectorBitmap(&s, chunk: chunk) }
                        let sbIndex = layout.sectorBitmapEntryIndex(chunk: chunk)
                        var sbEntry = VHDXBATEntry(raw: bat[Int(sbIndex)])
                        if sbEntry.state != .fullyPresent {
                            // A new sector bitmap block at the end of the file, zeros from the
                            // extension (made durable before the log entry that names it).
                            sbEntry = VHDXBATEntry(state: .fullyPresent, fileOffset: fileEnd)
                            try file.setSize(fileEnd + VHDXLayout.sectorBitmapBlockSize)
                            fileEnd += VHDXLayout.sectorBitmapBlockSize
                            setEntry(sbIndex, sbEntry)
                        }
                        for n in sector..<stop {
                            let bit = n % VHDXLayout.sectorsPerChunk
                            if bitmap[Int(bit / 8)] & (1 << (bit % 8)) == 0 {
                                bitmap[Int(bit / 8)] |= 1 << (bit % 8)
                                bitmapSectors.insert(sbEntry.fileOffset + bit / 8 / 4096 * 4096)
                            }
                        }
                        bitmaps[chunk] = bitmap
                    }
                }
                var sectors: [(offset: UInt64, data: [UInt8])] = []
                for index in batSectors.sorted() {
                    var data = [UInt8](repeating: 0, count: 4096)
                    for i in 0..<512 where Int(index) * 512 + i < bat.count { data.putU64(bat[Int(index) * 512 + i], at: i * 8) }
                    sectors.append((batOffset + index * 4096, data))
                }
                for offset in bitmapSectors.sorted() {
                    guard let (chunk, start) = bitmapLocation(bat, offset) else { continue }
                    sectors.append((offset, (bitmaps[chunk] ?? []).slice(Int(start), 4096)))
                }
                s.fileEnd = fileEnd
                try logAndApply(&s, sectors)
            } catch {
                s.failure = error
                throw error
            }
            s.bat = bat
            for (chunk, bitmap) in bitmaps { s.bitmaps[chunk] = bitmap }
            for b in pending.blocks where VHDXBATEntry(raw: bat[Int(layout.payloadEntryIndex(block: b.block))]).state == .fullyPresent
                || VHDXBATEntry(raw: bat[Int(layout.payloadEntryIndex(block: b.block))]).state == .partiallyPresent {
                s.reserved[b.block] = nil
            }
        }
    }

    /// The chunk whose bitmap block holds file offset `offset`, and the offset within it.
    private func bitmapLocation(_ bat: [UInt64], _ offset: UInt64) -> (UInt64, UInt64)? {
        for chunk in 0..<layout.sectorBitmapBlocks {
            let e = VHDXBATEntry(raw: bat[Int(layout.sectorBitmapEntryIndex(chunk: chunk))])
            if e.state == .fullyPresent, offset >= e.fileOffset, offset < e.fileOffset + VHDXLayout.sectorBitmapBlockSize {
                return (chunk, offset - e.fileOffset)
            }
        }
        return nil
    }
}
