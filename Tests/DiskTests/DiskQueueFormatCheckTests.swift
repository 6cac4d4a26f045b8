import Glibc
import Testing
@testable import VeneerDisk

// The engine does not trust a format's mapping blindly: extents that do not cover the request
// exactly, name a descriptor the image did not declare, or send a write to a zero extent or a
// read-only parent fail the request (naming the file) instead of moving the wrong bytes.

/// An identity image whose mappings go wrong in one chosen way.
final class MisbehavingImage: DiskImage {
    enum Fault: Sendable, CaseIterable { case shortCoverage, longCoverage, undeclaredDescriptor, writeToZeroExtent, writeToReadOnlyFile }
    let path: String
    let geometry = DiskGeometry(virtualSize: 1 << 20, logicalBlockSize: 512, physicalBlockSize: 4096)
    let isReadOnly = false
    let supportsDiscard = false
    let fault: Fault
    let fd: Int32
    let readOnlyFD: Int32

    init(directory: ScratchDirectory, fault: Fault) {
        path = directory.file("bad.img")
        fd = makeTestFile(path, size: 1 << 20, fill: 0x99)
        readOnlyFD = open(path, O_RDONLY | O_CLOEXEC)
        self.fault = fault
    }

    deinit {
        close(fd)
        close(readOnlyFD)
    }

    var dataFiles: [DiskDataFile] {
        [DiskDataFile(fd: fd, path: path, writable: true), DiskDataFile(fd: readOnlyFD, path: path + " (parent)", writable: false)]
    }

    private func extents(_ offset: UInt64, _ length: UInt64) -> [DiskExtent] {
        switch fault {
        case .shortCoverage: [.file(fd: fd, offset: offset, length: length - 512)]
        case .longCoverage: [.file(fd: fd, offset: offset, length: length), .zero(length: 512)]
        case .undeclaredDescriptor: [.file(fd: 0, offset: offset, length: length)]
        case .writeToZeroExtent: [.zero(length: length)]
        case .writeToReadOnlyFile: [.file(fd: readOnlyFD, offset: offset, length: length)]
        }
    }

    func mapForRead(offset: UInt64, length: UInt64) throws(DiskError) -> [DiskExtent] { extents(offset, length) }
    func mapForWrite(offset: UInt64, length: UInt64) throws(DiskError) -> DiskWriteMapping { DiskWriteMapping(extents: extents(offset, length)) }
    func completeWrite(_ mapping: DiskWriteMapping, durable: Bool) throws(DiskError) {}
    func discard(offset: UInt64, length: UInt64) throws(DiskError) {}
    func flush() throws(DiskError) {}
}

@Suite struct DiskQueueFormatCheckTests {
    @Test(arguments: MisbehavingImage.Fault.allCases)
    func badMappingsFailTheRequest(fault: MisbehavingImage.Fault) throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let image = MisbehavingImage(directory: directory, fault: fault)
        let queue = try DiskQueue(image: image, cache: .writeback)
        let memory = TestMemory(8192)
        memset(memory.base, 0x11, 8192)
        let results = queue.submit([
            DiskRequest(token: 1, operation: .write(offset: 4096, buffers: [memory.buffer(count: 8192)], fua: false)),
            DiskRequest(token: 2, operation: .writeZeroes(offset: 4096, length: 8192)),
        ])
        #expect(results.map(\.token) == [1, 2], "refused at once")
        #expect(results.allSatisfy { $0.error != nil }, "\(results)")
        #expect(mismatch(preadBytes(image.fd, offset: 0, count: 1 << 16), [UInt8](repeating: 0x99, count: 1 << 16)) == nil, "nothing was written")
        if fault != .writeToZeroExtent && fault != .writeToReadOnlyFile {
            let read = drain(queue, queue.submit([DiskRequest(token: 3, operation: .read(offset: 4096, buffers: [memory.buffer(count: 8192)]))]))
            #expect(read.count == 1)
            #expect(read.first?.error?.kind == .corrupt, "\(read)")
            #expect(read.first?.error?.path == image.path)
        }
        #expect(queue.outstanding == 0)
        queue.close()
    }
}

/// The first half of the disk is a regular file; the second half names a directory, which the
/// kernel refuses for AIO at io_submit.
final class HalfDirectoryImage: DiskImage {
    let path: String
    let geometry = DiskGeometry(virtualSize: 1 << 20, logicalBlockSize: 512, physicalBlockSize: 4096)
    let isReadOnly = false
    let supportsDiscard = false
    let fd: Int32
    let directoryFD: Int32
    let directoryPath: String

    init(directory: ScratchDirectory) {
        path = directory.file("half.img")
        fd = makeTestFile(path, size: 1 << 19, fill: 0x21)
        directoryPath = directory.file("subdirectory")
        mkdir(directoryPath, 0o700)
        directoryFD = open(directoryPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    }

    deinit {
        close(fd)
        close(directoryFD)
    }

    var dataFiles: [DiskDataFile] {
        [DiskDataFile(fd: fd, path: path, writable: true), DiskDataFile(fd: directoryFD, path: directoryPath, writable: false)]
    }

    func mapForRead(offset: UInt64, length: UInt64) throws(DiskError) -> [DiskExtent] {
        offset < 1 << 19 ? [.file(fd: fd, offset: offset, length: length)] : [.file(fd: directoryFD, offset: offset - (1 << 19), length: length)]
    }
    func mapForWrite(offset: UInt64, length: UInt64) throws(DiskError) -> DiskWriteMapping { DiskWriteMapping(extents: [.file(fd: fd, offset: offset, length: length)]) }
    func completeWrite(_ mapping: DiskWriteMapping, durable: Bool) throws(DiskError) {}
    func discard(offset: UInt64, length: UInt64) throws(DiskError) {}
    func flush() throws(DiskError) {}
}

extension DiskQueueFormatCheckTests {
    @Test func aRequestTheKernelRefusesFailsAloneAndTheRestOfTheBatchRuns() throws {
        let directory = ScratchDirectory()
        defer { directory.remove() }
        let image = HalfDirectoryImage(directory: directory)
        let queue = try DiskQueue(image: image, cache: .writeback, depth: 8)
        let memory = TestMemory(3 * 4096)
        let immediate = queue.submit([
            DiskRequest(token: 1, operation: .read(offset: 0, buffers: [memory.buffer(at: 0, count: 4096)])),
            DiskRequest(token: 2, operation: .read(offset: 1 << 19, buffers: [memory.buffer(at: 4096, count: 4096)])),
            DiskRequest(token: 3, operation: .read(offset: 4096, buffers: [memory.buffer(at: 8192, count: 4096)])),
        ])
        let all = drain(queue, immediate)
        #expect(all.count == 3)
        let refused = all.first { $0.token == 2 }
        #expect(refused?.error?.kind == .io(errno: EINVAL), "\(all)")
        #expect(refused?.error?.path == image.directoryPath)
        #expect(all.filter { $0.token != 2 }.allSatisfy { $0.bytes == 4096 })
        #expect(mismatch(memory.bytes(at: 0, count: 4096) + memory.bytes(at: 8192, count: 4096), [UInt8](repeating: 0x21, count: 8192)) == nil)
        queue.close()
    }
}
