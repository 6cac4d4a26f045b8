import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A raw image: the file (or block device) is the disk, byte for byte.
public final class RawImage: DiskImage {
    public let path: String
    public let geometry: DiskGeometry
    public let isReadOnly: Bool
    public var supportsDiscard: Bool { discardWorks.load(ordering: .relaxed) }
    public var dataFiles: [DiskDataFile] { [DiskDataFile(fd: file.fd, path: path, writable: !isReadOnly)] }
    public let isBlockDevice: Bool

    private let file: HostFile
    /// Cleared when the file system refuses PUNCH_HOLE: discard then keeps the data.
    private let discardWorks: Atomic<Bool>

    private init(file: HostFile, geometry: DiskGeometry, readOnly: Bool, isBlockDevice: Bool, discard: Bool) {
        self.file = file
        self.path = file.path
        self.geometry = geometry
        self.isReadOnly = readOnly
        self.isBlockDevice = isBlockDevice
        self.discardWorks = Atomic(discard)
    }

    deinit { file.close() }

    public static func open(path: String, readOnly: Bool) throws(DiskError) -> RawImage {
        try open(path: path, readOnly: readOnly, logicalBlockSize: nil, physicalBlockSize: nil)
    }

    /// Block sizes default to 512/4096 (a block device: its own logical and physical sizes).
    public static func open(path: String, readOnly: Bool, logicalBlockSize: UInt32?, physicalBlockSize: UInt32?) throws(DiskError) -> RawImage {
        let file = try HostFile.open(path, writable: !readOnly)
        do throws(DiskError) {
            try file.lock(exclusive: !readOnly)
            let (size, isBlockDevice) = try file.size()
            var logical: UInt32 = 512, physical: UInt32 = 4096
            var discard = false
            if isBlockDevice, let dev = file.deviceNumbers() {
                let queue = "/sys/dev/block/\(dev.major):\(dev.minor)/queue/"
                if let l = readSmallTextFile(queue + "logical_block_size").flatMap(UInt32.init) { logical = l }
                if let p = readSmallTextFile(queue + "physical_block_size").flatMap(UInt32.init) { physical = max(p, logical) }
                discard = !readOnly && (readSmallTextFile(queue + "discard_max_bytes").flatMap(UInt64.init) ?? 0) > 0
            } else if !readOnly {
                // Probe past the end (KEEP_SIZE: nothing changes): EOPNOTSUPP means no hole punching here.
                discard = file.punchHole(at: (size + 4095) & ~4095, length: 4096) == 0
            }
            if let l = logicalBlockSize { logical = l }
            if let p = physicalBlockSize { physical = p } else { physical = max(physical, logical) }
            guard logical == 512 || logical == 4096 else {
                throw DiskError(.invalidRequest, path: path, "logical block size \(logical) (512 or 4096)")
            }
            guard physical >= logical, physical.nonzeroBitCount == 1, physical <= 1 << 20 else {
                throw DiskError(.invalidRequest, path: path, "physical block size \(physical) (a power of two from \(logical) to 1 MiB)")
            }
            guard size % UInt64(logical) == 0 else {
                throw DiskError(.unsupported, path: path, "size \(size) is not a multiple of the \(logical)-byte logical block size")
            }
            let geometry = DiskGeometry(virtualSize: size, logicalBlockSize: logical, physicalBlockSize: physical)
            return RawImage(file: file, geometry: geometry, readOnly: readOnly, isBlockDevice: isBlockDevice, discard: discard)
        } catch {
            file.close()
            throw error
        }
    }

    /// A sparse file of `size` bytes (which must not exist yet).
    public static func create(path: String, size: UInt64) throws(DiskError) {
        guard size > 0, size % 512 == 0 else { throw DiskError(.invalidRequest, path: path, "size \(size) is not a positive multiple of 512") }
        let file = try HostFile.open(path, writable: true, create: true)
        defer { file.close() }
        try file.setSize(size)
        try file.sync()
    }

    private func check(_ offset: UInt64, _ length: UInt64) throws(DiskError) {
        guard offset <= geometry.virtualSize, length <= geometry.virtualSize - offset else {
            throw DiskError(.invalidRequest, path: path, "range \(offset)+\(length) is outside the \(geometry.virtualSize)-byte disk")
        }
    }

    public func mapForRead(offset: UInt64, length: UInt64) throws(DiskError) -> [DiskExtent] {
        try check(offset, length)
        return [.file(fd: file.fd, offset: offset, length: length)]
    }

    public func mapForWrite(offset: UInt64, length: UInt64) throws(DiskError) -> DiskWriteMapping {
        guard !isReadOnly else { throw DiskError(.invalidRequest, path: path, "write to a read-only disk") }
        try check(offset, length)
        return DiskWriteMapping(extents: [.file(fd: file.fd, offset: offset, length: length)])
    }

    public func completeWrite(_ mapping: DiskWriteMapping, durable: Bool) throws(DiskError) {}

    public func discard(offset: UInt64, length: UInt64) throws(DiskError) {
        guard !isReadOnly else { throw DiskError(.invalidRequest, path: path, "discard on a read-only disk") }
        try check(offset, length)
        guard length > 0, supportsDiscard else { return }
        let e = file.punchHole(at: offset, length: length)
        if e == EOPNOTSUPP || e == ENOSYS { discardWorks.store(false, ordering: .relaxed); return }
        if e != 0 { throw file.error("discard of \(length) bytes at offset \(offset)", e) }
    }

    public func flush() throws(DiskError) {}
}
