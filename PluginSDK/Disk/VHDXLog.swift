import VHDXFormat

/// Finds and replays a VHDX log's active sequence ([MS-VHDX] 2.3.3): the valid entries, with
/// the header's log GUID, whose head (highest sequence number) names through `tail` an unbroken
/// run of valid entries with consecutive sequence numbers ending at it. Entries may wrap around
/// the end of the circular log.
struct VHDXLogReader {
    let file: HostFile
    let header: VHDXHeader
    let fileSize: UInt64

    static let maximumLength: UInt64 = 256 << 20
    private var sector: UInt64 { UInt64(VHDXLayout.logSectorSize) }
    private var length: UInt64 { UInt64(header.logLength) }

    func corrupt(_ m: String) -> DiskError { DiskError(.corrupt, path: file.path, m) }

    /// The entries to replay, oldest first (empty: nothing to do).
    func activeSequence() throws(DiskError) -> [VHDXLogEntry] {
        let log = try file.read(at: header.logOffset, count: Int(length))
        func bytes(at offset: UInt64, count: UInt64) -> [UInt8] {
            let start = Int(offset)
            let first = log.slice(start, Int(count))
            return first.count == Int(count) ? first : first + log.slice(0, Int(count) - first.count)
        }
        // Every valid entry of this log, by offset.
        var entries: [UInt64: VHDXLogEntry] = [:]
        var offset: UInt64 = 0
        while offset < length {
            defer { offset += sector }
            guard let peek = VHDXLogEntry.peek(bytes(at: offset, count: sector)), peek.logGUID == header.logGUID,
                  peek.entryLength >= UInt32(sector), UInt64(peek.entryLength) <= length else { continue }
            if let entry = try? VHDXLogEntry.decode(bytes(at: offset, count: UInt64(peek.entryLength))) {
                entries[offset] = entry
            }
        }
        // The head: the highest sequence number whose chain from its tail is complete.
        for (headOffset, head) in entries.sorted(by: { $0.value.sequenceNumber > $1.value.sequenceNumber }) {
            var chain: [VHDXLogEntry] = []
            var at = UInt64(head.tail)
            var expected: UInt64?
            var complete = false
            while chain.count <= entries.count, let entry = entries[at], expected == nil || entry.sequenceNumber == expected {
                chain.append(entry)
                if at == headOffset { complete = entry.sequenceNumber == head.sequenceNumber; break }
                expected = entry.sequenceNumber + 1
                at = (at + UInt64(entry.encodedLength)) % length
            }
            guard complete else { continue }
            guard head.flushedFileOffset <= fileSize else {
                throw corrupt("log entry \(head.sequenceNumber) needs the file to be at least \(head.flushedFileOffset) bytes; it is \(fileSize) (truncated?)")
            }
            return chain
        }
        return []
    }

    /// Applies the entries in order, extends the file to the head's LastFileOffset, flushes.
    func replay(_ entries: [VHDXLogEntry]) throws(DiskError) {
        let limit: UInt64 = 2 * VHDXLayout.maximumVirtualSize
        for entry in entries {
            guard entry.lastFileOffset <= limit else { throw corrupt("log entry \(entry.sequenceNumber) asks for a \(entry.lastFileOffset)-byte file") }
            for d in entry.descriptors {
                // Log entries never rewrite the identifier or the headers (those change only by the header protocol).
                guard d.fileOffset >= VHDXLayout.regionTableOffsets[0], d.fileOffset <= limit, d.length <= limit, d.fileOffset + d.length <= max(fileSize, entry.lastFileOffset) else {
                    throw corrupt("log entry \(entry.sequenceNumber) writes \(d.length) bytes at offset \(d.fileOffset), outside the file's structures")
                }
                switch d {
                case .data(let offset, let data): try file.write(data, at: offset)
                case .zero(let offset, let length):
                    // Only the part inside the file needs zeroing (an extension reads as zeros);
                    // a hole is punched so a huge range costs no time, zeros written if the
                    // file system cannot.
                    let size = try file.size().bytes
                    guard offset < size else { continue }
                    let inside = min(length, size - offset)
                    if file.punchHole(at: offset, length: inside) != 0 {
                        let chunk = [UInt8](repeating: 0, count: 1 << 20)
                        var done: UInt64 = 0
                        while done < inside {
                            let n = min(UInt64(chunk.count), inside - done)
                            try file.write(n == UInt64(chunk.count) ? chunk : Array(chunk.prefix(Int(n))), at: offset + done)
                            done += n
                        }
                    }
                }
            }
        }
        if let last = entries.last?.lastFileOffset, try file.size().bytes < last { try file.setSize(last) }
        try file.sync()
    }
}

extension VHDXImage {
    /// Writes `header` with the next sequence numbers into both slots (the non-current one
    /// first), flushing after each: a crash leaves one valid header, old or new.
    func writeHeaders(_ j: inout VHDXJournal, _ header: VHDXHeader) throws(DiskError) {
        var h = header
        for _ in 0..<2 {
            h.sequenceNumber = j.header.sequenceNumber + 1
            let slot = 1 - j.headerSlot
            try file.write(h.encode(), at: VHDXLayout.headerOffsets[slot])
            try file.sync()
            j.header = h
            j.headerSlot = slot
        }
    }

    /// Before the first change this session: new FileWriteGuid and DataWriteGuid ([MS-VHDX] 2.2.2).
    func prepareForWrites(_ j: inout VHDXJournal) throws(DiskError) {
        guard !j.wroteGUIDs else { return }
        var h = j.header
        h.fileWriteGUID = .random()
        h.dataWriteGUID = .random()
        try writeHeaders(&j, h)
        j.wroteGUIDs = true
    }

    /// Makes `sectors` (4 KiB each, file offset -> contents) durable through the log: the data
    /// the entry protects is flushed first, then the entry is written and flushed, then the
    /// sectors are written in place and flushed. Each entry is its own sequence (tail = itself):
    /// every earlier entry is already applied and on disk.
    func logAndApply(_ j: inout VHDXJournal, _ sectors: [(offset: UInt64, data: [UInt8])], fileEnd: UInt64) throws(DiskError) {
        guard !sectors.isEmpty else { return }
        try file.sync()
        if j.header.logGUID.isZero {
            var h = j.header
            h.logGUID = .random()
            try writeHeaders(&j, h)
            j.logHead = 0
        }
        let logLength = UInt64(j.header.logLength)
        // Entries of at most 64 data sectors (260 KiB): any fits a 1 MiB log.
        var start = 0
        while start < sectors.count {
            let group = Array(sectors[start..<min(sectors.count, start + 64)])
            start += group.count
            j.logSequence += 1
            let size = try file.size().bytes
            var offset = j.logHead
            let entry0 = VHDXLogEntry(sequenceNumber: j.logSequence, tail: 0, logGUID: j.header.logGUID, flushedFileOffset: size,
                                      lastFileOffset: max(size, fileEnd), descriptors: group.map { .data(fileOffset: $0.offset, data: $0.data) })
            let length = UInt64(entry0.encodedLength)
            if offset + length > logLength { offset = 0 }
            var entry = entry0
            entry.tail = UInt32(offset)
            try file.write(entry.encode(), at: j.header.logOffset + offset)
            try file.sync()
            for sector in group { try file.write(sector.data, at: sector.offset) }
            try file.sync()
            j.logHead = (offset + length) % logLength
        }
    }
}
