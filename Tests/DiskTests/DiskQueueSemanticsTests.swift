import Foundation
import Glibc
import Testing
@testable import VeneerDisk

// What each operation means beyond moving bytes: FUA and flush per cache mode (and the fallbacks
// for kernels without RWF_DSYNC or IOCB_CMD_FDSYNC), discard, writeZeroes over every extent kind,
// refusals (read-only, out of range, misaligned), a full file system and a file shorter than the disk.

@Suite struct DiskQueueSemanticsTests {
    private func write(_ queue: DiskQueue, _ memory: TestMemory, offset: UInt64, count: Int, fua: Bool, token: UInt64 = 1) -> [DiskCompletion] {
        memory.store(testPattern(offset: offset, count: count, generation: 2))
        return drain(queue, queue.submit([DiskRequest(token: token, operation: .write(offset: offset, buffers: [memory.buffer(count: count)], fua: fua))]))
    }

    @Test(arguments: [(DiskCacheMode.none, true), (.writeback, true), (.unsafe, false)])
    func fuaWritesArePublishedDurablyExceptWhenUnsafe(cache: DiskCacheMode, durable: Bool) throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let image = IdentityTestImage(path: directory.file("disk.img"), size: 1 << 20, fill: 0)
        let queue = try DiskQueue(image: image, cache: cache)
        let memory = TestMemory(65536)
        #expect(write(queue, memory, offset: 8192, count: 16384, fua: true).map(\.bytes) == [16384])
        #expect(write(queue, memory, offset: 65536, count: 4096, fua: false).map(\.bytes) == [4096])
        #expect(queue.dataSyncs == 0, "RWF_DSYNC makes the write itself durable")
        // Without RWF_DSYNC: the write, then an fdatasync of the file, then the publication.
        queue.usesDSyncWrites = false
        #expect(write(queue, memory, offset: 131_072, count: 8192, fua: true).map(\.bytes) == [8192])
        #expect(queue.dataSyncs == (durable ? 1 : 0))
        let log = image.log.withLock { $0.completedWrites.map { [$0.offset, $0.length, $0.durable ? 1 : 0] } }
        #expect(log == [[8192, 16384, durable ? 1 : 0], [65536, 4096, 0], [131_072, 8192, durable ? 1 : 0]])
        #expect(mismatch(preadBytes(image.fd, offset: 131_072, count: 8192), testPattern(offset: 131_072, count: 8192, generation: 2)) == nil)
        queue.close()
    }

    @Test func flushSyncsDataFilesThenTheFormat() throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let image = ChainTestImage(directory: directory, size: 1 << 20, parentBlocks: [0])
        let queue = try DiskQueue(image: image, cache: .writeback)
        let memory = TestMemory(65536)
        #expect(write(queue, memory, offset: 65536, count: 65536, fua: false).map(\.bytes) == [65536])
        let immediate = queue.submit([DiskRequest(token: 5, operation: .flush)])
        #expect(immediate.isEmpty, "an IOCB_CMD_FDSYNC completes through reap")
        #expect(drain(queue, immediate).map(\.bytes) == [0])
        #expect(image.log.withLock { $0.flushes } == 1)
        #expect(queue.dataSyncs == 1, "the child only: the parent is read-only")

        // Without IOCB_CMD_FDSYNC the flush is an fdatasync inside submit.
        queue.usesAIODataSync = false
        #expect(queue.submit([DiskRequest(token: 6, operation: .flush)]).map(\.bytes) == [0])
        #expect(image.log.withLock { $0.flushes } == 2)
        #expect(queue.dataSyncs == 2)
        queue.close()
    }

    @Test func unsafeFlushIsANoOp() throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let image = IdentityTestImage(path: directory.file("disk.img"), size: 1 << 20)
        let queue = try DiskQueue(image: image, cache: .unsafe)
        #expect(queue.submit([DiskRequest(token: 1, operation: .flush)]).map(\.bytes) == [0])
        #expect(queue.outstanding == 0)
        #expect(image.log.withLock { $0.flushes } == 0)
        #expect(queue.dataSyncs == 0)
        queue.close()
    }

    @Test func discardGoesToFormatsThatSupportIt() throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let image = IdentityTestImage(path: directory.file("disk.img"), size: 1 << 20, fill: 0x77)
        let queue = try DiskQueue(image: image, cache: .none)
        #expect(queue.submit([DiskRequest(token: 1, operation: .discard(offset: 4096, length: 8192))]).map(\.bytes) == [8192])
        #expect(image.log.withLock { $0.discards.map { [$0.offset, $0.length] } } == [[4096, 8192]])
        let memory = TestMemory(16384)
        let read = drain(queue, queue.submit([DiskRequest(token: 2, operation: .read(offset: 0, buffers: [memory.buffer(count: 16384)]))]))
        #expect(read.map(\.bytes) == [16384])
        #expect(mismatch(memory.bytes(count: 16384), [UInt8](repeating: 0x77, count: 4096) + [UInt8](repeating: 0, count: 8192) + [UInt8](repeating: 0x77, count: 4096)) == nil)
        queue.close()

        let chain = ChainTestImage(directory: directory, size: 1 << 20, parentBlocks: [])
        let chainQueue = try DiskQueue(image: chain, cache: .writeback)
        #expect(chainQueue.submit([DiskRequest(token: 3, operation: .discard(offset: 0, length: 65536))]).map(\.bytes) == [65536], "a hint the format may ignore")
        chainQueue.close()
    }

    @Test(arguments: [(DiskCacheMode.none, true), (.none, false), (.writeback, true), (.writeback, false)])
    func writeZeroesReadsBackAsZeros(cache: DiskCacheMode, zeroRange: Bool) throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let size: UInt64 = 8 << 20
        let image = IdentityTestImage(path: directory.file("disk.img"), size: size, fill: 0xAB)
        let queue = try DiskQueue(image: image, cache: cache)
        queue.usesZeroRange = zeroRange
        // 3 MiB + 4 KiB: more than one 256 KiB block of zeros when written.
        let length: UInt64 = (3 << 20) + 4096
        let done = drain(queue, queue.submit([DiskRequest(token: 1, operation: .writeZeroes(offset: 8192, length: length))]))
        #expect(done.map(\.bytes) == [length])
        #expect(mismatch(preadBytes(image.fd, offset: 0, count: 8192), [UInt8](repeating: 0xAB, count: 8192)) == nil)
        #expect(mismatch(preadBytes(image.fd, offset: 8192, count: Int(length)), [UInt8](repeating: 0, count: Int(length))) == nil)
        #expect(mismatch(preadBytes(image.fd, offset: 8192 + length, count: 4096), [UInt8](repeating: 0xAB, count: 4096)) == nil)
        #expect(image.log.withLock { $0.completedWrites.map { [$0.offset, $0.length, $0.durable ? 1 : 0] } } == [[8192, length, 0]])
        queue.close()

        // Over a chain: a block the parent has, and one nobody has, both read as zeros afterwards.
        let chain = ChainTestImage(directory: directory, size: 1 << 20, parentBlocks: [2])
        let chainQueue = try DiskQueue(image: chain, cache: cache)
        chainQueue.usesZeroRange = zeroRange
        let block = ChainTestImage.blockSize
        #expect(drain(chainQueue, chainQueue.submit([DiskRequest(token: 2, operation: .writeZeroes(offset: 2 * block, length: 2 * block))])).map(\.bytes) == [2 * block])
        let memory = TestMemory(Int(4 * block))
        #expect(drain(chainQueue, chainQueue.submit([DiskRequest(token: 3, operation: .read(offset: block, buffers: [memory.buffer(count: Int(4 * block))]))])).map(\.bytes) == [4 * block])
        #expect(mismatch(memory.bytes(count: Int(4 * block)), [UInt8](repeating: 0, count: Int(4 * block))) == nil)
        chainQueue.close()
    }

    @Test(arguments: [DiskCacheMode.none, .writeback])
    func readOnlyDisksRefuseEveryChange(cache: DiskCacheMode) throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let image = IdentityTestImage(path: directory.file("disk.img"), size: 1 << 20, fill: 0x42, readOnly: true)
        let queue = try DiskQueue(image: image, cache: cache)
        let memory = TestMemory(4096)
        let refused = queue.submit([
            DiskRequest(token: 1, operation: .write(offset: 0, buffers: [memory.buffer(count: 4096)], fua: false)),
            DiskRequest(token: 2, operation: .writeZeroes(offset: 0, length: 4096)),
            DiskRequest(token: 3, operation: .discard(offset: 0, length: 4096)),
        ])
        #expect(refused.map(\.token) == [1, 2, 3])
        #expect(refused.allSatisfy { $0.error?.kind == .invalidRequest && $0.error?.message.contains("read-only") == true })
        #expect(mismatch(preadBytes(image.fd, offset: 0, count: 4096), [UInt8](repeating: 0x42, count: 4096)) == nil)
        #expect(drain(queue, queue.submit([DiskRequest(token: 4, operation: .read(offset: 0, buffers: [memory.buffer(count: 4096)]))])).map(\.bytes) == [4096])
        #expect(mismatch(memory.bytes(count: 4096), [UInt8](repeating: 0x42, count: 4096)) == nil)
        #expect(queue.submit([DiskRequest(token: 5, operation: .flush)]).map(\.bytes) == [0])
        queue.close()
    }

    @Test func requestsOutsideTheDiskOrOffTheBlockGridAreRefused() throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let size: UInt64 = 1 << 20
        let image = IdentityTestImage(path: directory.file("disk.img"), size: size, logicalBlockSize: 4096)
        let queue = try DiskQueue(image: image, cache: .none)
        let memory = TestMemory(8192)
        let refused = queue.submit([
            DiskRequest(token: 1, operation: .read(offset: size, buffers: [memory.buffer(count: 4096)])),
            DiskRequest(token: 2, operation: .read(offset: size - 4096, buffers: [memory.buffer(count: 8192)])),
            DiskRequest(token: 3, operation: .read(offset: 512, buffers: [memory.buffer(count: 4096)])),
            DiskRequest(token: 4, operation: .write(offset: 0, buffers: [memory.buffer(count: 1000)], fua: false)),
            DiskRequest(token: 5, operation: .writeZeroes(offset: UInt64.max - 4095, length: 8192)),
            DiskRequest(token: 6, operation: .discard(offset: 4096, length: UInt64.max - 4095)),
            DiskRequest(token: 7, operation: .read(offset: 0, buffers: [DiskBuffer(base: memory.base, count: -4096)])),
        ])
        #expect(refused.map(\.token) == [1, 2, 3, 4, 5, 6, 7])
        for completion in refused {
            #expect(completion.error?.kind == .invalidRequest, "token \(completion.token): \(completion.result)")
            #expect(completion.error?.path == image.path)
        }
        #expect(queue.outstanding == 0)
        queue.close()
    }

    @Test func emptyRequestsCompleteAtOnceWithNoBytes() throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let image = IdentityTestImage(path: directory.file("disk.img"), size: 1 << 20, fill: 0x55)
        let queue = try DiskQueue(image: image, cache: .none)
        let memory = TestMemory(4096)
        let done = queue.submit([
            DiskRequest(token: 1, operation: .read(offset: 4096, buffers: [])),
            DiskRequest(token: 2, operation: .write(offset: 1 << 20, buffers: [memory.buffer(count: 0)], fua: true)),
            DiskRequest(token: 3, operation: .writeZeroes(offset: 0, length: 0)),
            DiskRequest(token: 4, operation: .discard(offset: 0, length: 0)),
        ])
        #expect(done.map(\.token) == [1, 2, 3, 4])
        #expect(done.allSatisfy { $0.bytes == 0 }, "\(done)")
        #expect(queue.outstanding == 0)
        #expect(image.log.withLock { $0.completedWrites.isEmpty && $0.discards.isEmpty })
        #expect(mismatch(preadBytes(image.fd, offset: 0, count: 8192), [UInt8](repeating: 0x55, count: 8192)) == nil)
        queue.close()
    }

    @Test func aFileShorterThanTheDiskFailsTheReadRatherThanReturningShort() throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let path = directory.file("short.img")
        let fd = makeTestFile(path, size: 65536 + 4096, fill: 0x33)
        let image = IdentityTestImage(path: path, fd: fd, size: 1 << 20)
        let queue = try DiskQueue(image: image, cache: .writeback)
        let memory = TestMemory(16384)
        let done = drain(queue, queue.submit([DiskRequest(token: 1, operation: .read(offset: 65536, buffers: [memory.buffer(count: 16384)]))]))
        #expect(done.count == 1)
        #expect(done.first?.error?.kind == .io(errno: EIO))
        #expect(done.first?.error?.message.contains("end of the file") == true, "\(done)")
        #expect(mismatch(memory.bytes(count: 4096), [UInt8](repeating: 0x33, count: 4096)) == nil, "the part that existed was read")
        queue.close()
    }

    @Test(arguments: [DiskCacheMode.writeback, .none])
    func aFullFileSystemIsNoSpace(cache: DiskCacheMode) throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let mountPoint = directory.file("tiny")
        mkdir(mountPoint, 0o700)
        guard run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=256k", "veneer-disktest", mountPoint]) else {
            print("SKIPPED: cannot mount a 256 KiB tmpfs at \(mountPoint) (needs root)")
            return
        }
        defer { _ = run("/usr/bin/umount", ["--lazy", mountPoint]) }
        let image = IdentityTestImage(path: "\(mountPoint)/disk.img", size: 4 << 20)
        let queue: DiskQueue
        do {
            queue = try DiskQueue(image: image, cache: cache)
        } catch {
            #expect(error.kind == .unsupported, "tmpfs without O_DIRECT must be named as such: \(error)")
            return
        }
        let memory = TestMemory(1 << 20)
        let done = drain(queue, queue.submit([DiskRequest(token: 1, operation: .write(offset: 0, buffers: [memory.buffer(count: 1 << 20)], fua: false))]))
        #expect(done.count == 1)
        #expect(done.first?.error?.kind == .noSpace, "\(done)")
        #expect(done.first?.error?.path == image.path)
        #expect(image.log.withLock { $0.completedWrites.isEmpty }, "a failed write is not published")
        queue.close()
    }

    @Test func cacheNoneOnAFileSystemWithoutODirectIsUnsupportedNamingTheFile() throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let mountPoint = directory.file("ramfs")
        mkdir(mountPoint, 0o700)
        // ramfs has no O_DIRECT at all.
        guard run("/usr/bin/mount", ["-t", "ramfs", "veneer-disktest", mountPoint]) else {
            print("SKIPPED: cannot mount a ramfs at \(mountPoint) (needs root)")
            return
        }
        defer { _ = run("/usr/bin/umount", ["--lazy", mountPoint]) }
        let image = IdentityTestImage(path: "\(mountPoint)/disk.img", size: 1 << 20, fill: 0x66)
        #expect {
            _ = try DiskQueue(image: image, cache: .none)
        } throws: { error in
            guard let error = error as? DiskError else { return false }
            return error.kind == .unsupported && error.path == image.path && error.message.contains("O_DIRECT")
        }
        // The page cache works there.
        let queue = try DiskQueue(image: image, cache: .writeback)
        let memory = TestMemory(4096)
        #expect(drain(queue, queue.submit([DiskRequest(token: 1, operation: .read(offset: 0, buffers: [memory.buffer(count: 4096)]))])).map(\.bytes) == [4096])
        #expect(mismatch(memory.bytes(count: 4096), [UInt8](repeating: 0x66, count: 4096)) == nil)
        queue.close()
    }

    private func run(_ tool: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}
