import VHDXFormat

extension VHDXImage {
    /// The deepest parent chain followed (a loop of parents ends here too).
    static let maximumChainDepth = 32

    public static func open(path: String, readOnly: Bool) throws(DiskError) -> VHDXImage {
        try open(path: path, readOnly: readOnly, depth: 0)
    }

    static func open(path: String, readOnly: Bool, depth: Int, crashPoint: CrashPoint? = nil) throws(DiskError) -> VHDXImage {
        var file = try HostFile.open(path, writable: !readOnly)
        file.crashPoint = crashPoint
        do throws(DiskError) {
            try file.lock(exclusive: !readOnly)
            return try open(file: file, readOnly: readOnly, depth: depth)
        } catch {
            file.close()
            throw error
        }
    }

    private static func open(file: HostFile, readOnly: Bool, depth: Int) throws(DiskError) -> VHDXImage {
        let path = file.path
        func corrupt(_ m: String) -> DiskError { DiskError(.corrupt, path: path, m) }
        func unsupported(_ m: String) -> DiskError { DiskError(.unsupported, path: path, m) }
        func decode<T>(_ body: () throws(VHDXFormatError) -> T) throws(DiskError) -> T {
            do { return try body() } catch { throw corrupt(error.description) }
        }

        let (fileSize, isBlockDevice) = try file.size()
        guard !isBlockDevice else { throw unsupported("a VHDX on a block device is not supported (use a file)") }
        guard fileSize >= 2 * VHDXLayout.miB else { throw corrupt("file of \(fileSize) bytes is too short to be a VHDX") }
        let identifierBytes = try file.read(at: 0, count: VHDXFileIdentifier.size)
        let identifier = try decode { () throws(VHDXFormatError) in try VHDXFileIdentifier.decode(identifierBytes) }

        // Headers: the valid one with the higher sequence number is current.
        var headers: [(slot: Int, header: VHDXHeader)] = []
        var headerErrors: [String] = []
        for (slot, offset) in VHDXLayout.headerOffsets.enumerated() {
            let bytes = try file.read(at: offset, count: VHDXHeader.size)
            switch Result(catching: { () throws(VHDXFormatError) in try VHDXHeader.decode(bytes) }) {
            case .success(let h): headers.append((slot, h))
            case .failure(let e): headerErrors.append("header \(slot + 1): \(e.message)")
            }
        }
        guard let current = headers.max(by: { $0.header.sequenceNumber < $1.header.sequenceNumber }) else {
            throw corrupt("neither header is valid (\(headerErrors.joined(separator: "; ")))")
        }
        let header = current.header
        guard header.version == 1 else { throw unsupported("header version \(header.version) (only 1 is supported)") }
        guard header.logVersion == 0 else { throw unsupported("log version \(header.logVersion) (only 0 is supported)") }
        let logOffset = header.logOffset, logLength = UInt64(header.logLength)
        guard logOffset % VHDXLayout.miB == 0, logLength % VHDXLayout.miB == 0, logLength > 0, logOffset >= VHDXLayout.miB,
              logOffset <= fileSize, logLength <= fileSize - logOffset else {
            throw corrupt("log at offset \(logOffset), \(logLength) bytes, is not 1 MiB aligned inside the \(fileSize)-byte file")
        }

        // The log: replay whatever it holds before reading any structure it may change.
        var replayed = 0
        let journal = VHDXJournal(header: header, headerSlot: current.slot)
        // Bounded so a hostile header cannot make the replay read gigabytes (Hyper-V and qemu use 1 MiB).
        guard logLength <= VHDXLogReader.maximumLength else {
            throw unsupported("log of \(logLength) bytes (Veneer reads logs up to \(VHDXLogReader.maximumLength >> 20) MiB)")
        }
        if !header.logGUID.isZero {
            let log = VHDXLogReader(file: file, header: header, fileSize: fileSize)
            let sequence = try log.activeSequence()
            if !sequence.isEmpty {
                guard !readOnly else {
                    throw DiskError(.unsupported, path: path,
                                    "the VHDX log holds \(sequence.count) entries to replay; open it writable once (e.g. `veneer disk check --repair`) to replay them")
                }
                try log.replay(sequence)
                replayed = sequence.count
            }
        }
        let sizeNow = try file.size().bytes
        /// [start, start + length) lies inside the file (no overflow whatever the fields say).
        func inFile(_ start: UInt64, _ length: UInt64) -> Bool { start <= sizeNow && length <= sizeNow - start }

        // Region table: the first valid copy.
        var regionTable: VHDXRegionTable?
        var regionErrors: [String] = []
        for (i, offset) in VHDXLayout.regionTableOffsets.enumerated() {
            let bytes = try file.read(at: offset, count: VHDXRegionTable.size)
            switch Result(catching: { () throws(VHDXFormatError) in try VHDXRegionTable.decode(bytes) }) {
            case .success(let t): regionTable = t
            case .failure(let e): regionErrors.append("region table \(i + 1): \(e.message)")
            }
            if regionTable != nil { break }
        }
        guard let regionTable else { throw corrupt("neither region table is valid (\(regionErrors.joined(separator: "; ")))") }
        var bat: VHDXRegionTable.Entry?, metadata: VHDXRegionTable.Entry?
        var objects: [(start: UInt64, end: UInt64, name: String)] = [(0, VHDXLayout.miB, "the headers"), (logOffset, logOffset + logLength, "the log")]
        for entry in regionTable.entries {
            let name: String
            switch entry.guid {
            case VHDXRegionTable.batGUID:
                guard bat == nil else { throw corrupt("region table lists the BAT twice") }
                bat = entry
                name = "the BAT"
            case VHDXRegionTable.metadataGUID:
                guard metadata == nil else { throw corrupt("region table lists the metadata region twice") }
                metadata = entry
                name = "the metadata region"
            default:
                if entry.required { throw unsupported("unknown required region \(entry.guid)") }
                name = "region \(entry.guid)"
            }
            guard entry.fileOffset % VHDXLayout.miB == 0, entry.length > 0, entry.length % UInt32(VHDXLayout.miB) == 0,
                  entry.fileOffset >= VHDXLayout.miB, inFile(entry.fileOffset, UInt64(entry.length)) else {
                throw corrupt("\(name) at offset \(entry.fileOffset), \(entry.length) bytes, is not 1 MiB aligned inside the \(sizeNow)-byte file")
            }
            objects.append((entry.fileOffset, entry.fileOffset + UInt64(entry.length), name))
        }
        guard let bat else { throw corrupt("region table has no BAT") }
        guard let metadata else { throw corrupt("region table has no metadata region") }

        // Metadata.
        let metadataBytes = try file.read(at: metadata.fileOffset, count: VHDXMetadataTable.size)
        let metadataTable = try decode { () throws(VHDXFormatError) in try VHDXMetadataTable.decode(metadataBytes) }
        var items: [VHDXGUID: [UInt8]] = [:]
        for entry in metadataTable.entries {
            let name = VHDXMetadataItem.name(entry.itemID)
            if name == nil {
                if entry.isRequired { throw unsupported("unknown required metadata item \(entry.itemID)") }
                continue
            }
            guard items[entry.itemID] == nil else { throw corrupt("metadata item \(name ?? "") appears twice") }
            guard entry.length <= 1 << 20, entry.offset >= 64 * 1024 || entry.length == 0,
                  UInt64(entry.offset) + UInt64(entry.length) <= UInt64(metadata.length) else {
                throw corrupt("metadata item \(name ?? "") at \(entry.offset), \(entry.length) bytes, lies outside the metadata region")
            }
            items[entry.itemID] = try file.read(at: metadata.fileOffset + UInt64(entry.offset), count: Int(entry.length))
        }
        func item(_ id: VHDXGUID, size: Int) throws(DiskError) -> [UInt8] {
            let name = VHDXMetadataItem.name(id) ?? "\(id)"
            guard let bytes = items[id] else { throw corrupt("metadata has no \(name) item") }
            guard bytes.count >= size else { throw corrupt("metadata item \(name) is \(bytes.count) bytes (at least \(size))") }
            return bytes
        }
        let parameters = VHDXFileParameters.decode(try item(VHDXMetadataItem.fileParameters, size: VHDXFileParameters.size))
        let virtualSize = try item(VHDXMetadataItem.virtualDiskSize, size: 8).u64(at: 0)
        let virtualDiskID = VHDXGUID(bytes: try item(VHDXMetadataItem.page83Data, size: 16))
        let logical = try item(VHDXMetadataItem.logicalSectorSize, size: 4).u32(at: 0)
        let physical = try item(VHDXMetadataItem.physicalSectorSize, size: 4).u32(at: 0)
        let blockSize = parameters.blockSize
        guard blockSize.nonzeroBitCount == 1, blockSize >= 1 << 20, blockSize <= 256 << 20 else {
            throw corrupt("block size \(blockSize) (a power of two from 1 MiB to 256 MiB)")
        }
        guard logical == 512 || logical == 4096 else { throw corrupt("logical sector size \(logical) (512 or 4096)") }
        guard physical == 512 || physical == 4096 else { throw corrupt("physical sector size \(physical) (512 or 4096)") }
        guard virtualSize > 0, virtualSize % UInt64(logical) == 0, virtualSize <= VHDXLayout.maximumVirtualSize else {
            throw corrupt("virtual size \(virtualSize) (a multiple of \(logical) up to 64 TiB)")
        }

        // The BAT: every entry's state known, every block inside the file, no two overlapping.
        let layout = VHDXBATGeometry(virtualSize: virtualSize, blockSize: blockSize, logicalSectorSize: logical, hasParent: parameters.hasParent)
        let entryCount = layout.totalEntries
        guard entryCount * 8 <= UInt64(bat.length) else {
            throw corrupt("BAT region of \(bat.length) bytes cannot hold \(entryCount) entries")
        }
        let batBytes = try file.read(at: bat.fileOffset, count: Int(entryCount * 8))
        let entries = (0..<Int(entryCount)).map { batBytes.u64(at: $0 * 8) }
        let chunkPeriod = Int(layout.chunkRatio + 1)
        for (index, raw) in entries.enumerated() {
            let entry = VHDXBATEntry(raw: raw)
            let isBitmap = index % chunkPeriod == chunkPeriod - 1
            let what = isBitmap ? "BAT entry \(index) (sector bitmap of chunk \(index / chunkPeriod))"
                : "BAT entry \(index) (block \(index - index / chunkPeriod))"
            guard let state = entry.state else { throw corrupt("\(what) has the reserved state \(raw & 7)") }
            let length: UInt64
            if isBitmap {
                switch state {
                case .notPresent: continue
                case .fullyPresent where parameters.hasParent: length = VHDXLayout.sectorBitmapBlockSize
                default: throw corrupt("\(what) has state \(state) \(parameters.hasParent ? "" : "in a disk without a parent")")
                }
            } else {
                switch state {
                case .notPresent, .undefined, .zero, .unmapped: continue
                case .fullyPresent: length = UInt64(blockSize)
                case .partiallyPresent:
                    guard parameters.hasParent else { throw corrupt("\(what) is partially present in a disk without a parent") }
                    let bitmapEntry = VHDXBATEntry(raw: entries[min(entries.count - 1, (index / chunkPeriod) * chunkPeriod + chunkPeriod - 1)])
                    guard bitmapEntry.state == .fullyPresent else { throw corrupt("\(what) is partially present but its chunk has no sector bitmap") }
                    length = UInt64(blockSize)
                }
            }
            guard entry.fileOffset >= VHDXLayout.miB, inFile(entry.fileOffset, length) else {
                throw corrupt("\(what) points at offset \(entry.fileOffset), beyond the end of the \(sizeNow)-byte file")
            }
            objects.append((entry.fileOffset, entry.fileOffset + length, what))
        }
        objects.sort { $0.start < $1.start }
        for (a, b) in zip(objects, objects.dropFirst()) where b.start < a.end {
            throw corrupt("\(b.name) at offset \(b.start) overlaps \(a.name)")
        }
        let fileEnd = max((sizeNow + VHDXLayout.miB - 1) / VHDXLayout.miB * VHDXLayout.miB, objects.map(\.end).max() ?? 0)

        // The parent chain.
        var parent: VHDXImage?
        var locator: VHDXParentLocator?
        if parameters.hasParent {
            let locatorBytes = try item(VHDXMetadataItem.parentLocator, size: 0)
            let parsed = try decode { () throws(VHDXFormatError) in try VHDXParentLocator.decode(locatorBytes) }
            locator = parsed
            let parentImage = try openParent(of: path, locator: parsed, depth: depth)
            parent = parentImage
            let parent = parentImage
            guard parent.geometry.virtualSize == virtualSize, parent.geometry.logicalBlockSize == logical else {
                throw corrupt("parent \(parent.path) is \(parent.geometry.virtualSize) bytes of \(parent.geometry.logicalBlockSize)-byte sectors, this disk \(virtualSize) of \(logical)")
            }
        }

        let state = VHDXState(bat: entries, fileEnd: fileEnd)
        let type: DiskType = parameters.hasParent ? .differencing : parameters.leaveBlocksAllocated ? .fixed : .dynamic
        let image = VHDXImage(
            file: file, readOnly: readOnly,
            geometry: DiskGeometry(virtualSize: virtualSize, logicalBlockSize: logical, physicalBlockSize: max(physical, logical)),
            type: type, blockSize: blockSize, virtualDiskID: virtualDiskID, parent: parent, parentLocator: locator, replayed: replayed,
            creator: identifier.creator, layout: layout, batOffset: bat.fileOffset,
            reservedRanges: objects.filter { $0.name.hasPrefix("the ") }.map { ($0.start, $0.end) }, state: state, journal: journal)
        if replayed > 0 || !header.logGUID.isZero {
            // The log is applied and flushed: a header without a log GUID says so.
            try image.journal.withLock { (j: inout VHDXJournal) throws(DiskError) in
                var h = j.header
                h.logGUID = .zero
                try image.writeHeaders(&j, h)
            }
        }
        return image
    }

    /// Finds and opens the parent the locator names: relative_path (from this file's directory),
    /// then absolute_win32_path and volume_path when they are usable host paths. The parent's
    /// DataWriteGuid must be the child's parent_linkage (or parent_linkage2).
    private static func openParent(of path: String, locator: VHDXParentLocator, depth: Int) throws(DiskError) -> VHDXImage {
        guard locator.locatorType == VHDXParentLocator.vhdxLocatorType else {
            throw DiskError(.unsupported, path: path, "parent locator type \(locator.locatorType) (only VHDX parents are supported)")
        }
        guard depth < maximumChainDepth else { throw DiskError(.unsupported, path: path, "parent chain deeper than \(maximumChainDepth)") }
        guard let linkageText = locator["parent_linkage"], let linkage = VHDXGUID(linkageText) else {
            throw DiskError(.corrupt, path: path, "parent locator has no valid parent_linkage")
        }
        let linkage2 = locator["parent_linkage2"].flatMap { VHDXGUID($0) }
        var candidates: [String] = []
        if let relative = locator["relative_path"] { candidates.append(resolve(hostPath(relative), against: directory(of: path))) }
        for key in ["absolute_win32_path", "volume_path"] {
            if let p = locator[key].map(hostPath), p.hasPrefix("/") { candidates.append(p) }
        }
        guard !candidates.isEmpty else {
            throw DiskError(.unsupported, path: path, "parent locator has no path usable on this host (relative_path: \(locator["relative_path"] ?? "none"), absolute_win32_path: \(locator["absolute_win32_path"] ?? "none"))")
        }
        var missing: [String] = []
        for candidate in candidates {
            guard (try? HostFile.open(candidate, writable: false)).map({ $0.close(); return true }) ?? false else {
                missing.append(candidate)
                continue
            }
            let parent = try open(path: candidate, readOnly: true, depth: depth + 1)
            let guid = parent.dataWriteGUID
            guard guid == linkage || guid == linkage2 else {
                throw DiskError(.corrupt, path: path, "parent \(candidate) has data write GUID {\(guid)}, but this disk was made from {\(linkage)} (the parent changed after the child was made)")
            }
            return parent
        }
        throw DiskError(.io(errno: 2), path: path, "parent not found (tried \(missing.joined(separator: ", ")))")
    }

    /// Windows separators become slashes; a leading ".\" is dropped.
    static func hostPath(_ p: String) -> String {
        var s = p.replacingAll("\\", with: "/")
        while s.hasPrefix("./") { s.removeFirst(2) }
        return s
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func resolve(_ p: String, against directory: String) -> String {
        p.hasPrefix("/") ? p : (directory == "/" ? "/" + p : directory + "/" + p)
    }
}

extension String {
    func replacingAll(_ a: Character, with b: Character) -> String { String(map { $0 == a ? b : $0 }) }
}
