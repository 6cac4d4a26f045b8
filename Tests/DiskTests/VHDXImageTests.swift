import Foundation
import Testing
import VHDXFormat
@testable import VeneerDisk

// VHDX images made, written and read back by Veneer; every kind of corruption refused with an
// error naming the file and the structure; the log replayed on open.

@Suite struct VHDXImageTests {
    @Test(arguments: [VHDXImage.DiskType.dynamic, .fixed])
    func writesReadBackAfterReopen(type: VHDXImage.DiskType) throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("d.vhdx")
        try VHDXImage.create(path: path, options: .init(type: type, virtualSize: 64 << 20, blockSize: 1 << 20))
        let a = pattern(8192, seed: 1), b = pattern(1 << 20, seed: 2), c = pattern(512, seed: 3)
        do {
            let image = try VHDXImage.open(path: path, readOnly: false)
            #expect(image.type == type)
            #expect(image.geometry == DiskGeometry(virtualSize: 64 << 20, logicalBlockSize: 512, physicalBlockSize: 4096))
            #expect(try DiskIO.read(image, at: 0, count: 4096) == [UInt8](repeating: 0, count: 4096))
            try DiskIO.write(image, at: 4096, a)
            try DiskIO.write(image, at: (3 << 20) - 4096, b)  // spans two blocks
            try DiskIO.write(image, at: (64 << 20) - 512, c)  // the last sector
            try DiskIO.write(image, at: 4096 + 512, c)        // rewrites inside an allocated block
            try image.close()
        }
        let image = try VHDXImage.open(path: path, readOnly: true)
        var expectA = a
        expectA.replaceSubrange(512..<1024, with: c)
        #expect(try DiskIO.read(image, at: 4096, count: 8192) == expectA)
        #expect(try DiskIO.read(image, at: (3 << 20) - 4096, count: 1 << 20) == b)
        #expect(try DiskIO.read(image, at: (64 << 20) - 512, count: 512) == c)
        #expect(try DiskIO.read(image, at: 32 << 20, count: 4096) == [UInt8](repeating: 0, count: 4096))
        if type == .dynamic { #expect(image.allocatedBytes == 4 << 20, "blocks 0, 2, 3 and 63") }
    }

    @Test func headerGUIDsChangeOnFirstWriteAndLogIsCleanAfterClose() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("d.vhdx")
        try VHDXImage.create(path: path, options: .init(type: .dynamic, virtualSize: 8 << 20, blockSize: 1 << 20))
        let before = try VHDXImage.open(path: path, readOnly: true).dataWriteGUID
        let image = try VHDXImage.open(path: path, readOnly: false)
        #expect(image.dataWriteGUID == before, "opening alone changes nothing")
        try DiskIO.write(image, at: 0, pattern(4096, seed: 9))
        #expect(image.dataWriteGUID != before)
        #expect(image.journal.withLock { !$0.header.logGUID.isZero }, "the block allocation went through the log")
        try image.close()
        let headers = try VHDXLayout.headerOffsets.map { try VHDXHeader.decode(readFile(path, at: $0, count: 4096)) }
        #expect(headers.allSatisfy { $0.logGUID.isZero })
        #expect(throws: DiskError.self) { try DiskIO.write(image, at: 0, [UInt8](repeating: 1, count: 512)) }
    }

    @Test(arguments: [UInt32(512), 4096])
    func differencingReadsParentWhereChildHasNothing(sectorSize: UInt32) throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let base = dir.file("base.vhdx"), child = dir.file("child.vhdx")
        try VHDXImage.create(path: base, options: .init(type: .dynamic, virtualSize: 16 << 20, blockSize: 1 << 20,
                                                        logicalSectorSize: sectorSize, physicalSectorSize: 4096))
        let p = pattern(4 << 20, seed: 5)
        do {
            let image = try VHDXImage.open(path: base, readOnly: false)
            try DiskIO.write(image, at: 0, p)
        }
        try VHDXImage.create(path: child, options: .init(type: .differencing, virtualSize: 0, blockSize: 2 << 20, parentPath: base))
        let x = pattern(Int(sectorSize) * 2, seed: 6), y = pattern(2 << 20, seed: 7)
        let xAt = 3 * UInt64(sectorSize)
        do {
            let image = try VHDXImage.open(path: child, readOnly: false)
            #expect(image.type == .differencing)
            #expect(image.geometry.logicalBlockSize == sectorSize)
            #expect(image.parent?.path == dir.path + "/base.vhdx")
            #expect(try DiskIO.read(image, at: 0, count: 4 << 20) == p)
            try DiskIO.write(image, at: xAt, x)        // partial block: bitmap
            try DiskIO.write(image, at: 2 << 20, y)    // a whole block: fully present
            try DiskIO.write(image, at: 8 << 20, x)    // beyond the parent's data: zeros around it
        }
        let image = try VHDXImage.open(path: child, readOnly: true)
        var expected = p + [UInt8](repeating: 0, count: 12 << 20)
        expected.replaceSubrange(Int(xAt)..<Int(xAt) + x.count, with: x)
        expected.replaceSubrange((2 << 20)..<(4 << 20), with: y)
        expected.replaceSubrange((8 << 20)..<((8 << 20) + x.count), with: x)
        #expect(try DiskIO.read(image, at: 0, count: 16 << 20) == expected)
        let parentNow = try VHDXImage.open(path: base, readOnly: true)
        #expect(try DiskIO.read(parentNow, at: 0, count: 4 << 20) == p, "the parent is never written")
    }

    @Test func differencingChildRefusesAChangedParent() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let base = dir.file("base.vhdx"), child = dir.file("child.vhdx")
        try VHDXImage.create(path: base, options: .init(type: .dynamic, virtualSize: 8 << 20, blockSize: 1 << 20))
        try VHDXImage.create(path: child, options: .init(type: .differencing, virtualSize: 0, parentPath: base))
        do { try DiskIO.write(try VHDXImage.open(path: base, readOnly: false), at: 0, pattern(512, seed: 1)) }
        let error = try #require(throws: DiskError.self) { try VHDXImage.open(path: child, readOnly: true) }
        #expect(error.message.contains("data write GUID"))
        try FileManager.default.removeItem(atPath: base)
        let missing = try #require(throws: DiskError.self) { try VHDXImage.open(path: child, readOnly: true) }
        #expect(missing.message.contains("parent not found"))
    }

    @Test func fourKiBSectorsAndOpenDiskImageDetection() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("4k.vhdx")
        try VHDXImage.create(path: path, options: .init(type: .dynamic, virtualSize: 8 << 20, logicalSectorSize: 4096, physicalSectorSize: 4096))
        let image = try openDiskImage(path: path, format: nil, readOnly: false)
        #expect(image is VHDXImage)
        #expect(image.geometry.logicalBlockSize == 4096)
        try DiskIO.write(image, at: 4096, pattern(4096, seed: 4))
        #expect(try DiskIO.read(image, at: 4096, count: 4096) == pattern(4096, seed: 4))
        #expect(throws: DiskError.self) { try openDiskImage(path: path, format: nil, readOnly: true, logicalBlockSize: 512) }
    }

    @Test func rangesOutsideTheDiskAndReadOnlyWritesAreRefused() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("d.vhdx")
        try VHDXImage.create(path: path, options: .init(type: .dynamic, virtualSize: 8 << 20))
        let image = try VHDXImage.open(path: path, readOnly: true)
        #expect(throws: DiskError.self) { try image.mapForRead(offset: 8 << 20, length: 512) }
        #expect(throws: DiskError.self) { try image.mapForRead(offset: UInt64.max - 100, length: 512) }
        #expect(throws: DiskError.self) { try image.mapForWrite(offset: 0, length: 512) }
    }

    // MARK: Corruption

    /// Makes a dynamic disk with one allocated block, applies `damage`, and returns the open error.
    func openError(_ damage: (String) throws -> Void) throws -> DiskError {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("c.vhdx")
        try VHDXImage.create(path: path, options: .init(type: .dynamic, virtualSize: 16 << 20, blockSize: 1 << 20))
        do {
            let image = try VHDXImage.open(path: path, readOnly: false)
            try DiskIO.write(image, at: 0, pattern(4096, seed: 1))
            try DiskIO.write(image, at: 1 << 20, pattern(4096, seed: 2))
        }
        try damage(path)
        let error = try #require(throws: DiskError.self) { try VHDXImage.open(path: path, readOnly: false) }
        #expect(error.path == path)
        #expect(!error.description.contains("\n"))
        return error
    }

    @Test func badSignatureIsRefused() throws {
        let e = try openError { try patchFile($0, at: 0, Array("notvhdx!".utf8)) }
        #expect(e.kind == .corrupt && e.message.contains("vhdxfile"))
    }

    @Test func bothHeaderChecksumsFlippedIsRefused() throws {
        let e = try openError { path in
            for offset in VHDXLayout.headerOffsets { try patchFile(path, at: offset + 4, [0xDE, 0xAD, 0xBE, 0xEF]) }
        }
        #expect(e.kind == .corrupt && e.message.contains("header 1: checksum mismatch") && e.message.contains("header 2"))
    }

    @Test func oneBadHeaderFallsBackToTheOther() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("h.vhdx")
        try VHDXImage.create(path: path, options: .init(type: .dynamic, virtualSize: 8 << 20))
        try patchFile(path, at: VHDXLayout.headerOffsets[1] + 200, [1])  // the newer one (sequence 2)
        let image = try VHDXImage.open(path: path, readOnly: false)
        #expect(image.journal.withLock { $0.header.sequenceNumber } == 1)
        try DiskIO.write(image, at: 0, pattern(512, seed: 3))
        try image.close()
        #expect(try DiskIO.read(VHDXImage.open(path: path, readOnly: true), at: 0, count: 512) == pattern(512, seed: 3))
    }

    @Test func batEntryBeyondEndOfFileIsRefused() throws {
        let e = try openError { try patchFile($0, at: 3 << 20, VHDXBATGeometryTestValue.entry(6, offsetMiB: 4000)) }
        #expect(e.kind == .corrupt && e.message.contains("BAT entry 0") && e.message.contains("beyond the end"))
    }

    @Test func overlappingBlocksAreRefused() throws {
        let e = try openError { path in
            let first = try readFile(path, at: 3 << 20, count: 8)
            try patchFile(path, at: (3 << 20) + 16, first)  // block 2 claims block 0's place
        }
        #expect(e.kind == .corrupt && e.message.contains("overlaps"))
    }

    @Test func blockOverTheBATIsRefused() throws {
        let e = try openError { try patchFile($0, at: 3 << 20, VHDXBATGeometryTestValue.entry(6, offsetMiB: 3)) }
        #expect(e.kind == .corrupt && e.message.contains("overlaps"))
    }

    @Test func reservedBATStateIsRefused() throws {
        let e = try openError { try patchFile($0, at: (3 << 20) + 40, VHDXBATGeometryTestValue.entry(4, offsetMiB: 0)) }
        #expect(e.kind == .corrupt && e.message.contains("reserved state"))
    }

    @Test func unknownRequiredRegionIsUnsupported() throws {
        let unknown = VHDXGUID("01234567-89AB-CDEF-0123-456789ABCDEF")!
        let e = try openError { path in
            var table = try VHDXRegionTable.decode(readFile(path, at: VHDXLayout.regionTableOffsets[0], count: 65536))
            table.entries.append(.init(guid: unknown, fileOffset: 100 << 20, length: 1 << 20, required: true))
            for offset in VHDXLayout.regionTableOffsets { try patchFile(path, at: offset, table.encode()) }
        }
        #expect(e.kind == .unsupported && e.message.contains("01234567-89AB-CDEF-0123-456789ABCDEF"))
    }

    @Test func unknownRequiredMetadataItemIsUnsupported() throws {
        let e = try openError { path in
            var table = try VHDXMetadataTable.decode(readFile(path, at: 2 << 20, count: 65536))
            table.entries.append(.init(itemID: VHDXGUID("11111111-2222-3333-4444-555555555555")!, offset: 0x2_0000, length: 8, isVirtualDisk: true, isRequired: true))
            try patchFile(path, at: 2 << 20, table.encode())
        }
        #expect(e.kind == .unsupported && e.message.contains("metadata item 11111111-2222-3333-4444-555555555555"))
    }

    @Test func badBlockSizeIsRefused() throws {
        let e = try openError { path in
            let table = try VHDXMetadataTable.decode(readFile(path, at: 2 << 20, count: 65536))
            let params = try #require(table.entries.first { $0.itemID == VHDXMetadataItem.fileParameters })
            try patchFile(path, at: (2 << 20) + UInt64(params.offset), [0, 0, 0x30, 0])  // 3 MiB
        }
        #expect(e.kind == .corrupt && e.message.contains("block size"))
    }

    @Test func bothRegionTablesBadIsRefused() throws {
        let e = try openError { path in
            for offset in VHDXLayout.regionTableOffsets { try patchFile(path, at: offset + 20, [0xFF]) }
        }
        #expect(e.kind == .corrupt && e.message.contains("region table 1: checksum mismatch"))
    }

    @Test func truncatedFileIsRefused() throws {
        let e = try openError { path in
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: (4 << 20) + 4096)
            try handle.close()
        }
        #expect(e.kind == .corrupt && e.message.contains("beyond the end"))
    }
}

enum VHDXBATGeometryTestValue {
    static func entry(_ state: UInt64, offsetMiB: UInt64) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 8)
        b.putU64(state | offsetMiB << 20, at: 0)
        return b
    }
}
