import VHDXFormat

extension VHDXImage {
    /// What `create` makes.
    public struct CreateOptions: Sendable {
        public var type: DiskType
        /// Ignored for a differencing disk (it has its parent's size).
        public var virtualSize: UInt64
        public var blockSize: UInt32
        public var logicalSectorSize: UInt32
        public var physicalSectorSize: UInt32
        /// The parent of a differencing disk; stored relative to the child's directory.
        public var parentPath: String?

        public static let defaultBlockSize: UInt32 = 32 << 20

        public init(type: DiskType, virtualSize: UInt64, blockSize: UInt32 = defaultBlockSize, logicalSectorSize: UInt32 = 512,
                    physicalSectorSize: UInt32 = 4096, parentPath: String? = nil) {
            self.type = type
            self.virtualSize = virtualSize
            self.blockSize = blockSize
            self.logicalSectorSize = logicalSectorSize
            self.physicalSectorSize = physicalSectorSize
            self.parentPath = parentPath
        }
    }

    static let logOffset: UInt64 = VHDXLayout.miB
    static let logLength: UInt64 = VHDXLayout.miB
    static let metadataOffset: UInt64 = 2 * VHDXLayout.miB
    static let metadataLength: UInt64 = VHDXLayout.miB
    static let batOffsetForCreate: UInt64 = 3 * VHDXLayout.miB

    /// Makes a new VHDX at `path` (which must not exist). Layout: log at 1 MiB, metadata at
    /// 2 MiB, BAT at 3 MiB, payload after; a fixed disk has every block allocated in order.
    public static func create(path: String, options: CreateOptions) throws(DiskError) {
        var o = options
        func invalid(_ m: String) -> DiskError { DiskError(.invalidRequest, path: path, m) }
        var parentLinkage: VHDXGUID?
        var relativeParent: String?
        if o.type == .differencing {
            guard let parentPath = o.parentPath else { throw invalid("a differencing disk needs a parent") }
            let parent = try VHDXImage.open(path: parentPath, readOnly: true)
            o.virtualSize = parent.geometry.virtualSize
            o.logicalSectorSize = parent.geometry.logicalBlockSize
            o.physicalSectorSize = parent.geometry.physicalBlockSize
            parentLinkage = parent.dataWriteGUID
            // Both sides canonical, so the stored path holds wherever the pair is moved together.
            let childDirectory = canonicalPath(directory(of: path)) ?? directory(of: path)
            relativeParent = relativePath(from: childDirectory, to: canonicalPath(parentPath) ?? parentPath)
        } else if o.parentPath != nil {
            throw invalid("only a differencing disk has a parent")
        }
        guard o.blockSize.nonzeroBitCount == 1, o.blockSize >= 1 << 20, o.blockSize <= 256 << 20 else {
            throw invalid("block size \(o.blockSize) (a power of two from 1 MiB to 256 MiB)")
        }
        guard o.logicalSectorSize == 512 || o.logicalSectorSize == 4096 else { throw invalid("logical sector size \(o.logicalSectorSize) (512 or 4096)") }
        guard o.physicalSectorSize == 512 || o.physicalSectorSize == 4096 else { throw invalid("physical sector size \(o.physicalSectorSize) (512 or 4096)") }
        guard o.virtualSize > 0, o.virtualSize % UInt64(o.logicalSectorSize) == 0, o.virtualSize <= VHDXLayout.maximumVirtualSize else {
            throw invalid("size \(o.virtualSize) (a positive multiple of \(o.logicalSectorSize) up to 64 TiB)")
        }

        let layout = VHDXBATGeometry(virtualSize: o.virtualSize, blockSize: o.blockSize, logicalSectorSize: o.logicalSectorSize, hasParent: o.type == .differencing)
        let batLength = (layout.totalEntries * 8 + VHDXLayout.miB - 1) / VHDXLayout.miB * VHDXLayout.miB
        let payloadStart = batOffsetForCreate + batLength
        guard batLength <= UInt64(UInt32.max) else { throw invalid("BAT of \(batLength) bytes is too large") }

        // Metadata items, each at its own place after the 64 KiB table.
        var items: [(VHDXGUID, [UInt8], virtualDisk: Bool)] = [
            (VHDXMetadataItem.fileParameters, VHDXFileParameters(blockSize: o.blockSize, leaveBlocksAllocated: o.type == .fixed, hasParent: o.type == .differencing).encode(), false),
            (VHDXMetadataItem.virtualDiskSize, le64(o.virtualSize), true),
            (VHDXMetadataItem.page83Data, VHDXGUID.random().bytes, true),
            (VHDXMetadataItem.logicalSectorSize, le32(o.logicalSectorSize), true),
            (VHDXMetadataItem.physicalSectorSize, le32(o.physicalSectorSize), true),
        ]
        if let parentLinkage, let relativeParent {
            let locator = VHDXParentLocator(entries: [("parent_linkage", "{\(parentLinkage)}"), ("relative_path", relativeParent.replacingAll("/", with: "\\"))])
            items.append((VHDXMetadataItem.parentLocator, locator.encode(), false))
        }
        var metadata = [UInt8](repeating: 0, count: Int(metadataLength))
        var tableEntries: [VHDXMetadataTable.Entry] = []
        var at = 64 * 1024
        for (id, bytes, virtualDisk) in items {
            metadata.putBytes(bytes, at: at)
            tableEntries.append(.init(itemID: id, offset: UInt32(at), length: UInt32(bytes.count), isVirtualDisk: virtualDisk, isRequired: true))
            at += (bytes.count + 4095) / 4096 * 4096
        }
        metadata.putBytes(VHDXMetadataTable(entries: tableEntries).encode(), at: 0)

        let regions = VHDXRegionTable(entries: [
            .init(guid: VHDXRegionTable.batGUID, fileOffset: batOffsetForCreate, length: UInt32(batLength), required: true),
            .init(guid: VHDXRegionTable.metadataGUID, fileOffset: metadataOffset, length: UInt32(metadataLength), required: true),
        ]).encode()

        // The BAT: a fixed disk's blocks follow one another from payloadStart.
        var fileSize = payloadStart
        var bat = [UInt8](repeating: 0, count: Int(layout.totalEntries * 8))
        if o.type == .fixed {
            for block in 0..<layout.payloadBlocks {
                bat.putU64(VHDXBATEntry(state: .fullyPresent, fileOffset: fileSize).raw, at: Int(layout.payloadEntryIndex(block: block)) * 8)
                fileSize += layout.blockSize
            }
        }

        let file = try HostFile.open(path, writable: true, create: true)
        defer { file.close() }
        do {
            try file.write(VHDXFileIdentifier(creator: "Veneer").encode(), at: 0)
            let dataWrite = VHDXGUID.random()
            for (i, offset) in VHDXLayout.headerOffsets.enumerated() {
                let h = VHDXHeader(sequenceNumber: UInt64(i + 1), fileWriteGUID: .random(), dataWriteGUID: dataWrite, logGUID: .zero,
                                   logLength: UInt32(logLength), logOffset: logOffset)
                try file.write(h.encode(), at: offset)
            }
            for offset in VHDXLayout.regionTableOffsets { try file.write(regions, at: offset) }
            try file.write(metadata, at: metadataOffset)
            try file.write(bat, at: batOffsetForCreate)
            try file.setSize(fileSize)
            try file.sync()
        } catch {
            _ = unlinkFile(path)
            throw error
        }
    }

    private static func le64(_ v: UInt64) -> [UInt8] { var b = [UInt8](repeating: 0, count: 8); b.putU64(v, at: 0); return b }
    private static func le32(_ v: UInt32) -> [UInt8] { var b = [UInt8](repeating: 0, count: 4); b.putU32(v, at: 0); return b }

    /// `target` relative to `directory` when both are relative or both absolute (".." as needed);
    /// otherwise `target` as given.
    static func relativePath(from directory: String, to target: String) -> String {
        let targetDirectory = Self.directory(of: target)
        let name = String(target.split(separator: "/").last ?? Substring(target))
        guard directory.hasPrefix("/") == targetDirectory.hasPrefix("/") else { return target }
        let from = directory.split(separator: "/").filter { $0 != "." }
        let to = targetDirectory.split(separator: "/").filter { $0 != "." }
        var common = 0
        while common < from.count, common < to.count, from[common] == to[common], from[common] != ".." { common += 1 }
        guard !from[common...].contains("..") else { return target }
        let parts = Array(repeating: "..", count: from.count - common) + to[common...].map(String.init) + [name]
        return parts.joined(separator: "/")
    }
}
