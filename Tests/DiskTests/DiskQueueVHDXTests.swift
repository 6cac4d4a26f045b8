import Foundation
import Testing
@testable import VeneerDisk

// The real data path over the formats: DiskQueue (libaio) writing and reading a Veneer VHDX,
// dynamic and differencing, with many requests in flight at once, several racing for the same
// new block; then the file reopened, qemu-img check clean and qemu-img convert equal.

@Suite struct DiskQueueVHDXTests {
    @Test(arguments: [DiskCacheMode.writeback, .none], [VHDXImage.DiskType.dynamic, .differencing])
    func manyRequestsInFlightThroughTheEngine(cache: DiskCacheMode, type: VHDXImage.DiskType) throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let size = 32 << 20
        let path = dir.file("q.vhdx")
        var expected = [UInt8](repeating: 0, count: size)
        if type == .differencing {
            let base = dir.file("base.vhdx")
            try VHDXImage.create(path: base, options: .init(type: .dynamic, virtualSize: UInt64(size), blockSize: 1 << 20))
            expected = pattern(size, seed: 61)
            do { try DiskIO.write(VHDXImage.open(path: base, readOnly: false), at: 0, expected) }
            try VHDXImage.create(path: path, options: .init(type: .differencing, virtualSize: 0, blockSize: 1 << 20, parentPath: base))
        } else {
            try VHDXImage.create(path: path, options: .init(type: .dynamic, virtualSize: UInt64(size), blockSize: 1 << 20))
        }

        // 48 writes of 64 KiB: three per block in 16 blocks, submitted together.
        let chunk = 64 << 10
        let offsets: [UInt64] = (0..<48).map { (i: Int) -> UInt64 in
            let block = UInt64(i % 16 * 2 + 1)        // odd blocks 1...31
            let within = UInt64(i / 16 * 3 * chunk + 4096)
            return block << 20 + within
        }
        let memory = TestMemory(offsets.count * chunk)
        for (i, offset) in offsets.enumerated() {
            let bytes = pattern(chunk, seed: UInt8(i))
            memory.store(bytes, at: i * chunk)
            expected.replaceSubrange(Int(offset)..<Int(offset) + chunk, with: bytes)
        }
        do {
            let image = try VHDXImage.open(path: path, readOnly: false)
            let queue: DiskQueue
            do { queue = try DiskQueue(image: image, cache: cache, depth: 32) } catch {
                guard cache == .none, error.kind == .unsupported else { throw error }
                print("SKIPPED (cache none): \(error)")
                return
            }
            let writes = offsets.enumerated().map { i, offset in
                DiskRequest(token: UInt64(i), operation: .write(offset: offset, buffers: [memory.buffer(at: i * chunk, count: chunk)], fua: i % 7 == 0))
            }
            let written = drain(queue, queue.submit(writes))
            #expect(written.count == writes.count)
            #expect(written.allSatisfy { (try? $0.result.get()) == UInt64(chunk) }, "\(written.filter { (try? $0.result.get()) != UInt64(chunk) })")
            #expect(drain(queue, queue.submit([DiskRequest(token: 999, operation: .flush)])).allSatisfy { (try? $0.result.get()) != nil })

            let readBack = TestMemory(size)
            let reads = (0..<(size / (1 << 20))).map { i in
                DiskRequest(token: UInt64(i), operation: .read(offset: UInt64(i) << 20, buffers: [readBack.buffer(at: i << 20, count: 1 << 20)]))
            }
            let read = drain(queue, queue.submit(reads))
            #expect(read.count == reads.count && read.allSatisfy { (try? $0.result.get()) == 1 << 20 })
            #expect(readBack.bytes(count: size) == expected, "the engine reads back what it wrote (and the parent where the child has nothing)")
            queue.close()
            try image.close()
        }
        #expect(try DiskIO.read(VHDXImage.open(path: path, readOnly: true), at: 0, count: size) == expected)
        if type == .dynamic, let qemu = qemuImg {
            let check = runTool(qemu, ["check", "-f", "vhdx", path])
            #expect(check?.status == 0, "\(check?.output ?? "")")
            let raw = dir.file("q.raw")
            #expect(runTool(qemu, ["convert", "-f", "vhdx", "-O", "raw", path, raw])?.status == 0)
            #expect(try fileBytes(raw) == expected)
        }
    }
}
