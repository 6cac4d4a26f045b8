import Foundation
import Glibc
import Synchronization
import Testing
@testable import VeneerDisk

// Several queues on one image, each driven by its own thread at the same time (as storvsp's
// channels are): every thread writes random-sized requests over its region with many in flight,
// reads them back through its queue and checks them; the main thread then checks the file.

@Suite struct DiskQueueThreadTests {
    @Test(arguments: [DiskCacheMode.none, .writeback])
    func queuesOnSeparateThreadsShareOneImage(cache: DiskCacheMode) throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let threads = 4
        let region = 1 << 20
        let image = IdentityTestImage(path: directory.file("disk.img"), size: UInt64(threads * region), fill: 0)
        let failures = Mutex<[String]>([])
        let finished = Mutex(0)

        let workers = (0..<threads).map { index in
            Thread {
                let problem = Self.exercise(image: image, cache: cache, region: index, regionSize: region)
                if let problem { failures.withLock { $0.append("queue \(index): \(problem)") } }
                finished.withLock { $0 += 1 }
            }
        }
        for worker in workers { worker.start() }
        // Bounded wait for the workers: a hang fails the test rather than blocking the run.
        for _ in 0..<6000 where finished.withLock({ $0 }) < threads { usleep(10_000) }
        #expect(finished.withLock { $0 } == threads, "every worker finished")
        #expect(failures.withLock { $0 } == [])
        for index in 0..<threads {
            let offset = UInt64(index * region)
            #expect(mismatch(preadBytes(image.fd, offset: offset, count: region), testPattern(offset: offset, count: region, generation: UInt8(index))) == nil)
        }
        #expect(image.log.withLock { $0.completedWrites.count } == threads * (region / 65536) * 2)
    }

    /// Writes the region as 32 KiB halves of 64 KiB slots (all in flight at once), reads it back in
    /// one request per slot; nil when everything matched.
    private static func exercise(image: IdentityTestImage, cache: DiskCacheMode, region: Int, regionSize: Int) -> String? {
        let queue: DiskQueue
        do {
            queue = try DiskQueue(image: image, cache: cache, depth: 16)
        } catch {
            return "\(error)"
        }
        defer { queue.close() }
        let base = UInt64(region * regionSize)
        let memory = TestMemory(regionSize)
        memory.store(testPattern(offset: base, count: regionSize, generation: UInt8(region)))
        var requests: [DiskRequest] = []
        for half in stride(from: 0, to: regionSize, by: 32768).reversed() {
            requests.append(DiskRequest(token: UInt64(half), operation: .write(offset: base + UInt64(half), buffers: [memory.buffer(at: half, count: 32768)], fua: half % 65536 == 0)))
        }
        let writes = drain(queue, queue.submit(requests))
        guard writes.count == requests.count, writes.allSatisfy({ $0.bytes == 32768 }) else { return "writes: \(writes.filter { $0.bytes != 32768 })" }

        let target = TestMemory(regionSize)
        let reads = (0..<regionSize / 65536).map { slot in
            DiskRequest(token: UInt64(slot), operation: .read(offset: base + UInt64(slot * 65536), buffers: [target.buffer(at: slot * 65536, count: 65536)]))
        }
        let done = drain(queue, queue.submit(reads))
        guard done.count == reads.count, done.allSatisfy({ $0.bytes == 65536 }) else { return "reads: \(done.filter { $0.bytes != 65536 })" }
        return mismatch(target.bytes(count: regionSize), memory.bytes(count: regionSize))
    }
}
