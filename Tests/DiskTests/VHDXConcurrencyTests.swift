import Foundation
import Synchronization
import Testing
@testable import VeneerDisk

// Several queues use one image at once: writers racing to allocate the same new block (and the
// same sector bitmap of a differencing disk) must all land in one block, every write readable
// afterwards, and the file still clean for qemu-img.

@Suite struct VHDXConcurrencyTests {
    /// 32 writers, 4 per block, 8 blocks; consecutive writers share a block, so the threads
    /// running at once race to allocate it.
    func hammer(_ image: VHDXImage, blockSize: Int) throws -> [(UInt64, [UInt8])] {
        let writes: [(UInt64, [UInt8])] = (0..<32).map { i in
            let block = i / 4, slot = i % 4
            return (UInt64(block * blockSize + slot * (blockSize / 4) + 4096), pattern(64 << 10, seed: UInt8(i)))
        }
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: writes.count) { i in
            do { try DiskIO.write(image, at: writes[i].0, writes[i].1) } catch {
                failures.withLock { $0.append("write \(i): \(error)") }
            }
        }
        let failed = failures.withLock { $0 }
        #expect(failed.isEmpty, "\(failed)")
        return writes
    }

    @Test func racingWritersShareNewBlocks() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("c.vhdx")
        try VHDXImage.create(path: path, options: .init(type: .dynamic, virtualSize: 16 << 20, blockSize: 1 << 20))
        let writes: [(UInt64, [UInt8])]
        do {
            let image = try VHDXImage.open(path: path, readOnly: false)
            writes = try hammer(image, blockSize: 1 << 20)
            #expect(image.allocatedBytes == 8 << 20, "one block each, however many writers raced for it")
            try image.close()
        }
        let image = try VHDXImage.open(path: path, readOnly: true)
        for (offset, bytes) in writes { #expect(try DiskIO.read(image, at: offset, count: bytes.count) == bytes) }
        if let qemu = qemuImg {
            let check = runTool(qemu, ["check", "-f", "vhdx", path])
            #expect(check?.status == 0, "\(check?.output ?? "")")
        } else {
            print("SKIPPED (qemu-img check part): qemu-img is not installed")
        }
    }

    @Test func racingWritersShareSectorBitmaps() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let base = dir.file("base.vhdx"), child = dir.file("child.vhdx")
        try VHDXImage.create(path: base, options: .init(type: .dynamic, virtualSize: 16 << 20, blockSize: 1 << 20))
        let baseData = pattern(16 << 20, seed: 99)
        do { try DiskIO.write(VHDXImage.open(path: base, readOnly: false), at: 0, baseData) }
        try VHDXImage.create(path: child, options: .init(type: .differencing, virtualSize: 0, blockSize: 1 << 20, parentPath: base))
        let writes: [(UInt64, [UInt8])]
        do { writes = try hammer(VHDXImage.open(path: child, readOnly: false), blockSize: 1 << 20) }
        var expected = baseData
        for (offset, bytes) in writes { expected.replaceSubrange(Int(offset)..<Int(offset) + bytes.count, with: bytes) }
        #expect(try DiskIO.read(VHDXImage.open(path: child, readOnly: true), at: 0, count: 16 << 20) == expected)
    }
}
