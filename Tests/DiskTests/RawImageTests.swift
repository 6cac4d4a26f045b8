import Foundation
import Testing
@testable import VeneerDisk

@Suite struct RawImageTests {
    @Test func createIsSparseAndOpensWithDefaults() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("r.img")
        try RawImage.create(path: path, size: 64 << 20)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.size] as? NSNumber)?.uint64Value == 64 << 20)
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_blocks < 64, "sparse: no data blocks allocated")
        let image = try RawImage.open(path: path, readOnly: false)
        #expect(image.geometry == DiskGeometry(virtualSize: 64 << 20, logicalBlockSize: 512, physicalBlockSize: 4096))
        #expect(try image.mapForRead(offset: 4096, length: 8192) == [.file(fd: image.dataFiles[0].fd, offset: 4096, length: 8192)])
        #expect(throws: DiskError.self) { try RawImage.create(path: path, size: 1 << 20) }
    }

    @Test func writeReadAndDiscard() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("r.img")
        try RawImage.create(path: path, size: 8 << 20)
        let image = try openDiskImage(path: path, format: nil, readOnly: false)
        #expect(image is RawImage)
        try DiskIO.write(image, at: 1 << 20, pattern(1 << 20, seed: 1))
        #expect(try DiskIO.read(image, at: 1 << 20, count: 1 << 20) == pattern(1 << 20, seed: 1))
        if image.supportsDiscard {
            try image.discard(offset: 1 << 20, length: 1 << 20)
            #expect(try DiskIO.read(image, at: 1 << 20, count: 1 << 20) == [UInt8](repeating: 0, count: 1 << 20))
        }
        #expect(throws: DiskError.self) { try image.mapForWrite(offset: 8 << 20, length: 512) }
    }

    @Test func readOnlyIsHonoured() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("r.img")
        try RawImage.create(path: path, size: 1 << 20)
        let image = try RawImage.open(path: path, readOnly: true)
        #expect(image.isReadOnly && !image.supportsDiscard && image.dataFiles[0].writable == false)
        #expect(throws: DiskError.self) { try image.mapForWrite(offset: 0, length: 512) }
        #expect(fcntl(image.dataFiles[0].fd, F_GETFL) & O_ACCMODE == O_RDONLY)
    }

    @Test func blockSizeOverridesAndRefusals() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("r.img")
        try RawImage.create(path: path, size: 1 << 20)
        let image = try openDiskImage(path: path, format: .raw, readOnly: true, logicalBlockSize: 4096, physicalBlockSize: nil)
        #expect(image.geometry.logicalBlockSize == 4096 && image.geometry.physicalBlockSize == 4096)
        #expect(throws: DiskError.self) { try openDiskImage(path: path, format: .raw, readOnly: true, logicalBlockSize: 1024) }
        #expect(throws: DiskError.self) { try openDiskImage(path: path, format: .raw, readOnly: true, logicalBlockSize: 4096, physicalBlockSize: 512) }
        let odd = dir.file("odd.img")
        _ = FileManager.default.createFile(atPath: odd, contents: Data(count: 1000))
        let e = try #require(throws: DiskError.self) { try RawImage.open(path: odd, readOnly: true) }
        #expect(e.message.contains("not a multiple"))
        #expect(throws: DiskError.self) { try RawImage.open(path: dir.path, readOnly: true) }
    }
}

@Suite struct DiskLockTests {
    @Test func aWritableImageIsExclusiveAndParentsAreShared() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let raw = dir.file("r.img"), base = dir.file("base.vhdx"), child = dir.file("child.vhdx")
        try RawImage.create(path: raw, size: 1 << 20)
        let writer = try RawImage.open(path: raw, readOnly: false)
        let busy = try #require(throws: DiskError.self) { try RawImage.open(path: raw, readOnly: true) }
        #expect(busy.message.contains("another process"))
        withExtendedLifetime(writer) {}
        try VHDXImage.create(path: base, options: .init(type: .dynamic, virtualSize: 8 << 20))
        try VHDXImage.create(path: child, options: .init(type: .differencing, virtualSize: 0, parentPath: base))
        let one = try VHDXImage.open(path: child, readOnly: false)
        let two = try VHDXImage.open(path: base, readOnly: true)  // shares the parent with the child
        #expect(throws: DiskError.self) { try VHDXImage.open(path: base, readOnly: false) }
        #expect(throws: DiskError.self) { try VHDXImage.open(path: child, readOnly: true) }
        withExtendedLifetime((one, two)) {}
    }
}
