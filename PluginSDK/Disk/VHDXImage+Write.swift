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
        if !guidsWritten.load(ordering: .acquiring) {
            try journal.withLock { (j: inout VHDXJournal) throws(DiskError) in
                if let failure = state.withLock({ $0.failure }) { throw failure }
                do throws(DiskError) { try prepareForWrites(&j) } catch {
                    state.withLock { $0.failure = error }
                    throw error
                }
            }
            guidsWritten.store(true, ordering: .releasing)
        }
        return try state.withLock { (s: inout VHDXState) throws(DiskError) -> DiskWriteMapping in
            if let failure = s.failure { throw failure }
            guard !s.closed else { throw DiskError(.invalidRequest, path: path, "write after close") }
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

    /// The metadata changes one completeWrite publishes, worked out under the state lock.
    private struct Publication {
        var entries: [Int: UInt64] = [:]
        var bitmaps: [UInt64: [UInt8]] = [:]
        var sectors: [(offset: UInt64, data: [UInt8])] = []
        var fileEnd: UInt64 = 0
    }

    public func completeWrite(_ mapping: DiskWriteMapping, durable: Bool) throws(DiskError) {
        guard let any = mapping.pending else { return }
        guard let pending = any as? VHDXPendingWrite else {
            throw DiskError(.invalidRequest, path: path, "completeWrite with a mapping this image did not make")
        }
        // Publishers take turns under the journal lock: the state they plan from cannot change
        // until they commit, and lookups only wait for the short plan and commit steps.
        try journal.withLock { (j: inout VHDXJournal) throws(DiskError) in
            let publication = try state.withLock { (s: inout VHDXState) throws(DiskError) -> Publication in
                if let failure = s.failure { throw failure }
                do throws(DiskError) { return try plan(pending, &s) } catch {
                    s.failure = error
                    throw error
                }
            }
            guard !publication.sectors.isEmpty else { return }
            do throws(DiskError) { try logAndApply(&j, publication.sectors, fileEnd: publication.fileEnd) } catch {
                state.withLock { $0.failure = error }
                throw error
            }
            state.withLock { s in
                for (index, raw) in publication.entries { s.bat[index] = raw }
                for (chunk, bitmap) in publication.bitmaps { s.bitmaps[chunk] = bitmap }
                for b in pending.blocks {
                    let state = VHDXBATEntry(raw: s.bat[Int(layout.payloadEntryIndex(block: b.block))]).state
                    if state == .fullyPresent || state == .partiallyPresent { s.reserved[b.block] = nil }
                }
            }
        }
    }

    /// New BAT entries and bitmap bits for `pending`, and the 4 KiB sectors that carry them.
    private func plan(_ pending: VHDXPendingWrite, _ s: inout VHDXState) throws(DiskError) -> Publication {
        var p = Publication()
        var batSectors = Set<Int>()
        var bitmapSectors = Set<UInt64>()  // file offsets of changed 4 KiB bitmap sectors
        func entry(_ index: UInt64) -> VHDXBATEntry { VHDXBATEntry(raw: p.entries[Int(index)] ?? s.bat[Int(index)]) }
        func set(_ index: UInt64, _ e: VHDXBATEntry) {
            p.entries[Int(index)] = e.raw
            batSectors.insert(Int(index) / 512)
        }
        for b in pending.blocks {
            let index = layout.payloadEntryIndex(block: b.block)
            let current = entry(index).state
            if current == .fullyPresent || (current == .partiallyPresent && !b.full) { continue }
            set(index, VHDXBATEntry(state: b.full ? .fullyPresent : .partiallyPresent, fileOffset: b.fileOffset))
        }
        var bitmapOffsets: [UInt64: UInt64] = [:]  // chunk -> file offset of its bitmap block
        for range in pending.sectorRanges {
            var sector = range.first
            while sector < range.first + range.count {
                let chunk = sector / VHDXLayout.sectorsPerChunk
                let block = sector * layout.logicalSectorSize / layout.blockSize
                let stop = min(range.first + range.count, (block + 1) * layout.sectorsPerBlock)
                defer { sector = stop }
                guard entry(layout.payloadEntryIndex(block: block)).state == .partiallyPresent else { continue }
                var bitmap: [UInt8]
                if let changed = p.bitmaps[chunk] { bitmap = changed } else { bitmap = try sectorBitmap(&s, chunk: chunk) }
                let sbIndex = layout.sectorBitmapEntryIndex(chunk: chunk)
                var sb = entry(sbIndex)
                if sb.state != .fullyPresent {
                    // A new sector bitmap block at the end of the file, zeros from the extension
                    // (made durable before the log entry that names it).
                    sb = VHDXBATEntry(state: .fullyPresent, fileOffset: s.fileEnd)
                    try file.setSize(s.fileEnd + VHDXLayout.sectorBitmapBlockSize)
                    s.fileEnd += VHDXLayout.sectorBitmapBlockSize
                    set(sbIndex, sb)
                }
                bitmapOffsets[chunk] = sb.fileOffset
                for n in sector..<stop {
                    let bit = n % VHDXLayout.sectorsPerChunk
                    if bitmap[Int(bit / 8)] & (1 << (bit % 8)) == 0 {
                        bitmap[Int(bit / 8)] |= 1 << (bit % 8)
                        bitmapSectors.insert(chunk << 8 | bit / 8 / 4096)  // chunk and sector within its 1 MiB block
                    }
                }
                p.bitmaps[chunk] = bitmap
            }
        }
        for index in batSectors.sorted() {
            var data = [UInt8](repeating: 0, count: 4096)
            for i in 0..<512 where index * 512 + i < s.bat.count {
                data.putU64(p.entries[index * 512 + i] ?? s.bat[index * 512 + i], at: i * 8)
            }
            p.sectors.append((batOffset + UInt64(index) * 4096, data))
        }
        for key in bitmapSectors.sorted() {
            let chunk = key >> 8, sectorInBlock = key & 0xFF
            guard let base = bitmapOffsets[chunk], let bitmap = p.bitmaps[chunk] else { continue }
            p.sectors.append((base + sectorInBlock * 4096, bitmap.slice(Int(sectorInBlock) * 4096, 4096)))
        }
        p.fileEnd = s.fileEnd
        return p
    }
}
