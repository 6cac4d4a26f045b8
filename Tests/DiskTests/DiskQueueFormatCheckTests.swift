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

    init(directory: TempDirectory, fault: Fault) {
        path = directory.file("bad.img")
        fd = makeFile(path, size: 1 << 20, fill: 0x99)
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
        let directory = TempDirectory()
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
        #expect(mismatch(fileBytes(image.fd, offset: 0, count: 1 << 16), [UInt8](repeating: 0x99, count: 1 << 16)) == nil, "nothing was written")
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
