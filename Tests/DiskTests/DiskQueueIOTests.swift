import Glibc
import Testing
@testable import VeneerDisk

// Data movement through DiskQueue: many requests in flight on several queues of one image, reads
// across file and zero extents of a chain, guest memory O_DIRECT cannot take, more requests than
// the queue depth, and close() with I/O in flight. Every write is checked in the file with pread
// and read back through the engine.

@Suite struct DiskQueueIOTests {
    static let caches: [DiskCacheMode] = [.none, .writeback]

    @Test(arguments: caches)
    func severalQueuesWithManyRequestsInFlight(cache: DiskCacheMode) throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let region: UInt64 = 2 << 20
        let slot: UInt64 = 64 * 1024
        let image = IdentityTestImage(path: directory.file("disk.img"), size: 3 * region, fill: 0)
        let queues = try (0..<3).map { _ in try DiskQueue(image: image, cache: cache, depth: 16) }
        let memories = (0..<3).map { _ in TestMemory(Int(region)) }
        var random = DiskQueueRandom(seed: 0x51DE)
        var expected: [UInt64: UInt64] = [:]  // token: bytes
        var written: [(offset: UInt64, count: Int)] = []
        var completions: [[DiskCompletion]] = [[], [], []]

        // Each queue writes 32 slots of its own region (4 KiB..64 KiB each, in two iovecs), all at once.
        for (q, queue) in queues.enumerated() {
            var requests: [DiskRequest] = []
            for index in 0..<Int(region / slot) {
                let count = (1 + random.below(16)) * 4096
                let offset = UInt64(q) * region + UInt64(index) * slot
                let memoryOffset = index * Int(slot)
                memories[q].store(testPattern(offset: offset, count: count, generation: 1), at: memoryOffset)
                let split = count > 4096 ? 4096 : count
                var buffers = [memories[q].buffer(at: memoryOffset, count: split)]
                if count > split { buffers.append(memories[q].buffer(at: memoryOffset + split, count: count - split)) }
                let token = UInt64(q * 1000 + index)
                requests.append(DiskRequest(token: token, operation: .write(offset: offset, buffers: buffers, fua: false)))
                expected[token] = UInt64(count)
                written.append((offset, count))
            }
            completions[q] = queue.submit(requests)
            #expect(completions[q].isEmpty, "writes complete through reap")
        }
        for (q, queue) in queues.enumerated() { completions[q] = drain(queue, completions[q]) }
        let all = completions.flatMap { $0 }
        #expect(all.count == expected.count)
        #expect(Set(all.map(\.token)).count == all.count, "each request completes once")
        for completion in all { #expect(completion.bytes == expected[completion.token], "token \(completion.token): \(completion.result)") }
        for write in written {
            #expect(mismatch(preadBytes(image.fd, offset: write.offset, count: write.count), testPattern(offset: write.offset, count: write.count, generation: 1)) == nil)
        }
        #expect(image.log.withLock { $0.completedWrites.count } == written.count)

        // Read the whole disk back through the queues, each queue reading another's region in 96 KiB requests.
        let readMemory = TestMemory(Int(3 * region))
        for (q, queue) in queues.enumerated() {
            let base = UInt64((q + 1) % 3) * region
            var requests: [DiskRequest] = []
            var at = base
            while at < base + region {
                let count = Int(min(96 * 1024, base + region - at))
                let buffers = [readMemory.buffer(at: Int(at), count: 512), readMemory.buffer(at: Int(at) + 512, count: count - 512)]
                requests.append(DiskRequest(token: at, operation: .read(offset: at, buffers: buffers)))
                at += UInt64(count)
            }
            let done = drain(queue, queue.submit(requests))
            #expect(done.count == requests.count)
            #expect(done.allSatisfy { $0.error == nil })
        }
        for write in written {
            #expect(mismatch(readMemory.bytes(at: Int(write.offset), count: write.count), testPattern(offset: write.offset, count: write.count, generation: 1)) == nil)
            let rest = Int(slot) - write.count
            #expect(mismatch(readMemory.bytes(at: Int(write.offset) + write.count, count: rest), [UInt8](repeating: 0, count: rest)) == nil)
        }
        for queue in queues { queue.close() }
    }

    @Test(arguments: caches)
    func chainReadsChildParentAndZeroExtents(cache: DiskCacheMode) throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let block = ChainTestImage.blockSize
        let image = ChainTestImage(directory: directory, size: 16 * block, parentBlocks: [1, 3, 4, 9])
        let queue = try DiskQueue(image: image, cache: cache, depth: 8)

        // Child writes: block 3 (over a parent block), block 5 (over nothing), blocks 10-11 in one request.
        let memory = TestMemory(Int(16 * block))
        var requests: [DiskRequest] = []
        for (first, count) in [(UInt64(3), 1), (5, 1), (10, 2)] {
            let offset = first * block
            let length = Int(block) * count
            memory.store(testPattern(offset: offset, count: length, generation: 1), at: Int(offset))
            requests.append(DiskRequest(token: first, operation: .write(offset: offset, buffers: [memory.buffer(at: Int(offset), count: length)], fua: false)))
        }
        let writes = drain(queue, queue.submit(requests))
        #expect(writes.count == 3)
        #expect(writes.allSatisfy { $0.error == nil }, "\(writes)")
        #expect(image.childBlocks.withLock { $0 } == [3, 5, 10, 11])

        // One read of the whole disk in uneven (512-multiple) segments.
        let target = TestMemory(Int(16 * block))
        let cuts = [0, 512 * 3, 200 * 1024, 700 * 1024, Int(16 * block)]
        let buffers = zip(cuts, cuts.dropFirst()).map { target.buffer(at: $0, count: $1 - $0) }
        let reads = drain(queue, queue.submit([DiskRequest(token: 99, operation: .read(offset: 0, buffers: buffers))]))
        #expect(reads.map(\.bytes) == [16 * block])
        for index in 0..<UInt64(16) {
            let got = target.bytes(at: Int(index * block), count: Int(block))
            let want: [UInt8]
            if [3, 5, 10, 11].contains(index) {
                want = testPattern(offset: index * block, count: Int(block), generation: 1)
            } else if [1, 4, 9].contains(index) {
                want = testPattern(offset: index * block, count: Int(block), generation: 7)
            } else {
                want = [UInt8](repeating: 0, count: Int(block))
            }
            #expect(mismatch(got, want) == nil, "block \(index)")
        }
        // The engine wrote only where the format mapped: the rest of the child is untouched.
        #expect(mismatch(preadBytes(image.childFD, offset: 0, count: Int(block)), [UInt8](repeating: 0xEE, count: Int(block))) == nil)

        // A read entirely in unallocated blocks completes at once from submit.
        let zeros = queue.submit([DiskRequest(token: 7, operation: .read(offset: 6 * block, buffers: [target.buffer(count: Int(block))]))])
        #expect(zeros.map(\.bytes) == [block])
        #expect(mismatch(target.bytes(count: Int(block)), [UInt8](repeating: 0, count: Int(block))) == nil)
        queue.close()
    }

    @Test func unalignedGuestMemoryUnderODirect() throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let image = IdentityTestImage(path: directory.file("disk.img"), size: 1 << 20, fill: 0x11)
        let queue = try DiskQueue(image: image, cache: .none, depth: 4)
        let memory = TestMemory(64 * 1024)
        // 8 KiB at disk offset 4096 from three odd addresses and lengths (100 + 4508 + 3584).
        let sources = [(1, 100), (700, 4508), (9001, 3584)]
        let data = testPattern(offset: 4096, count: 8192, generation: 3)
        var at = 0
        for (offset, count) in sources {
            memory.store(Array(data[at..<at + count]), at: offset)
            at += count
        }
        let write = drain(queue, queue.submit([DiskRequest(token: 1, operation: .write(offset: 4096, buffers: sources.map { memory.buffer(at: $0.0, count: $0.1) }, fua: false))]))
        #expect(write.map(\.bytes) == [8192])
        #expect(mismatch(preadBytes(image.fd, offset: 4096, count: 8192), data) == nil)
        #expect(mismatch(preadBytes(image.fd, offset: 0, count: 4096), [UInt8](repeating: 0x11, count: 4096)) == nil)

        // Read it back into other odd places, split differently.
        let targets = [(20_003, 5000), (30_001, 3192)]
        let read = drain(queue, queue.submit([DiskRequest(token: 2, operation: .read(offset: 4096, buffers: targets.map { memory.buffer(at: $0.0, count: $0.1) }))]))
        #expect(read.map(\.bytes) == [8192])
        #expect(mismatch(memory.bytes(at: 20_003, count: 5000) + memory.bytes(at: 30_001, count: 3192), data) == nil)
        queue.close()
    }

    @Test func backlogBeyondDepthCompletesEveryRequest() throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let image = IdentityTestImage(path: directory.file("disk.img"), size: 1 << 20, fill: 0)
        let queue = try DiskQueue(image: image, cache: .none, depth: 2)
        let memory = TestMemory(40 * 4096)
        var requests: [DiskRequest] = []
        for index in 0..<40 {
            let offset = UInt64(index) * 4096
            memory.store(testPattern(offset: offset, count: 4096, generation: 5), at: index * 4096)
            requests.append(DiskRequest(token: UInt64(index), operation: .write(offset: offset, buffers: [memory.buffer(at: index * 4096, count: 4096)], fua: false)))
        }
        let first = queue.submit(requests)
        #expect(first.isEmpty)
        #expect(queue.outstanding == 40, "backlogged requests count as outstanding")
        let done = drain(queue, first)
        #expect(queue.outstanding == 0)
        #expect(done.map(\.token).sorted() == (0..<40).map(UInt64.init))
        #expect(done.allSatisfy { $0.bytes == 4096 })
        #expect(mismatch(preadBytes(image.fd, offset: 0, count: 40 * 4096), testPattern(offset: 0, count: 40 * 4096, generation: 5)) == nil)
        queue.close()
    }

    @Test(arguments: caches)
    func closeWaitsForInFlightAndBackloggedWrites(cache: DiskCacheMode) throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let image = IdentityTestImage(path: directory.file("disk.img"), size: 4 << 20, fill: 0)
        let queue = try DiskQueue(image: image, cache: cache, depth: 4)
        let memory = TestMemory(32 * 65536)
        memory.store(testPattern(offset: 0, count: 32 * 65536, generation: 9))
        let requests = (0..<32).map { index in
            DiskRequest(token: UInt64(index), operation: .write(offset: UInt64(index) * 65536, buffers: [memory.buffer(at: index * 65536, count: 65536)], fua: false))
        }
        #expect(queue.submit(requests).isEmpty)
        queue.close()
        #expect(image.log.withLock { $0.completedWrites.count } == 32, "every write was published before close returned")
        #expect(mismatch(preadBytes(image.fd, offset: 0, count: 32 * 65536), testPattern(offset: 0, count: 32 * 65536, generation: 9)) == nil)
        let late = queue.submit([DiskRequest(token: 1, operation: .flush)])
        #expect(late.first?.error?.kind == .invalidRequest)
        #expect(queue.reap().isEmpty)
    }
}

/// DiskQueueRandom: the whole state is the seed, so a seed names one exact run.
struct DiskQueueRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
}
