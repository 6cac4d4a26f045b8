import VeneerDisk
#if canImport(Glibc)
import Glibc
#endif

/// A minimal raw test image: the file is the disk, byte for byte, with its descriptor exposed so
/// that tests can wrap it (discard that writes zeros, injected failures). Thread-safe: immutable
/// state and a descriptor used with positional calls.
final class PlainRawImage: DiskImage, @unchecked Sendable {
    let path: String
    let geometry: DiskGeometry
    let isReadOnly: Bool
    let fd: Int32

    init(path: String, readOnly: Bool, logicalBlockSize: UInt32?, physicalBlockSize: UInt32?) throws(DiskError) {
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        guard fd >= 0 else { throw DiskError(.io(errno: errno), path: path, "cannot open: \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG || (info.st_mode & S_IFMT) == S_IFBLK else {
            close(fd)
            throw DiskError(.unsupported, path: path, "not a regular file or block device")
        }
        let size = (info.st_mode & S_IFMT) == S_IFBLK ? UInt64(lseek(fd, 0, SEEK_END)) : UInt64(info.st_size)
        let logical = logicalBlockSize ?? 512
        let physical = max(physicalBlockSize ?? 4096, logical)
        guard size % UInt64(logical) == 0 else {
            close(fd)
            throw DiskError(.unsupported, path: path, "size \(size) is not a multiple of the \(logical)-byte block size")
        }
        self.fd = fd
        self.path = path
        isReadOnly = readOnly
        geometry = DiskGeometry(virtualSize: size, logicalBlockSize: logical, physicalBlockSize: physical)
    }

    deinit { close(fd) }

    var supportsDiscard: Bool { false }
    var dataFiles: [DiskDataFile] { [DiskDataFile(fd: fd, path: path, writable: !isReadOnly)] }

    func mapForRead(offset: UInt64, length: UInt64) throws(DiskError) -> [DiskExtent] {
        try check(offset, length)
        return [.file(fd: fd, offset: offset, length: length)]
    }

    func mapForWrite(offset: UInt64, length: UInt64) throws(DiskError) -> DiskWriteMapping {
        guard !isReadOnly else { throw DiskError(.invalidRequest, path: path, "write to a read-only disk") }
        try check(offset, length)
        return DiskWriteMapping(extents: [.file(fd: fd, offset: offset, length: length)])
    }

    func completeWrite(_ mapping: DiskWriteMapping, durable: Bool) throws(DiskError) {}

    func discard(offset: UInt64, length: UInt64) throws(DiskError) {
        try check(offset, length)
        guard !isReadOnly else { throw DiskError(.invalidRequest, path: path, "discard on a read-only disk") }
        // Nothing is freed (hole punching comes with VeneerDisk's raw image): the data stays,
        // which "may read back as zeros" allows, and `supportsDiscard` says so to the guest.
    }

    func flush() throws(DiskError) {}

    private func check(_ offset: UInt64, _ length: UInt64) throws(DiskError) {
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= geometry.virtualSize else {
            throw DiskError(.invalidRequest, path: path, "range \(offset)+\(length) outside the disk")
        }
    }
}
