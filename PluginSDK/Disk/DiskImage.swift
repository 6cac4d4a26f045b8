// The contract between disk formats (raw, VHDX) and the I/O engine that moves data for them.
//
// A format translates guest byte ranges into extents of host files and does its metadata work
// (allocation, BAT and bitmap updates, the VHDX log) itself, synchronously: that work is rare and
// must be ordered with fsyncs. The data itself never passes through the format: the engine
// (`DiskQueue`) submits it to the kernel with libaio straight to and from guest memory.
//
// Write ordering, which is what makes a VHDX crash-safe:
//   1. `mapForWrite` reserves space (a new block at the end of the file, for instance) and returns
//      where the data goes, plus whatever metadata must be published once it is there.
//   2. The engine writes the data.
//   3. `completeWrite` publishes that metadata (through the log for VHDX). Only then is the write
//      reported complete to the guest.
//   `flush` makes every completed write durable: the engine fdatasyncs the data files it wrote,
//   then calls `flush` for the format's own metadata.

/// What the guest sees of a disk.
public struct DiskGeometry: Sendable, Equatable {
    /// Bytes; a multiple of `logicalBlockSize`.
    public var virtualSize: UInt64
    /// 512 or 4096: the unit of every guest LBA.
    public var logicalBlockSize: UInt32
    /// A power of two, at least `logicalBlockSize`: what the guest should align writes to.
    public var physicalBlockSize: UInt32

    public init(virtualSize: UInt64, logicalBlockSize: UInt32, physicalBlockSize: UInt32) {
        self.virtualSize = virtualSize
        self.logicalBlockSize = logicalBlockSize
        self.physicalBlockSize = physicalBlockSize
    }
}

/// Where one piece of a guest range lives.
public enum DiskExtent: Sendable, Equatable {
    /// `length` bytes at `offset` of the open file `fd` (the image itself, or a parent in a chain).
    case file(fd: Int32, offset: UInt64, length: UInt64)
    /// `length` bytes nobody wrote: they read as zeros.
    case zero(length: UInt64)

    public var length: UInt64 {
        switch self {
        case .file(_, _, let length), .zero(let length): length
        }
    }
}

/// Where a write goes, and what the format must publish after the data is written.
public struct DiskWriteMapping: Sendable {
    /// Only `.file` extents, covering the range in order.
    public var extents: [DiskExtent]
    /// Opaque to the engine: handed back to `completeWrite` (nil: nothing to publish).
    public var pending: (any Sendable)?

    public init(extents: [DiskExtent], pending: (any Sendable)? = nil) {
        self.extents = extents
        self.pending = pending
    }
}

/// An open disk image of any format. Implementations are thread-safe: several queues (one per
/// VMBus channel) use one image at once.
public protocol DiskImage: AnyObject, Sendable {
    /// The file the user named, for messages.
    var path: String { get }
    var geometry: DiskGeometry { get }
    var isReadOnly: Bool { get }
    /// True when `discard` can free space (raw: PUNCH_HOLE works on this file system).
    var supportsDiscard: Bool { get }
    /// Every file the extents can name, and whether the engine may write it (parents are read-only).
    /// The engine opens its own O_DIRECT descriptors of these when the cache mode asks for it.
    var dataFiles: [DiskDataFile] { get }

    /// Extents covering [offset, offset + length), in order. The range is inside the disk.
    func mapForRead(offset: UInt64, length: UInt64) throws(DiskError) -> [DiskExtent]
    /// Reserves space for a write of [offset, offset + length) and says where the data goes.
    func mapForWrite(offset: UInt64, length: UInt64) throws(DiskError) -> DiskWriteMapping
    /// Publishes a mapping's metadata once its data is written. `durable`: a FUA write, whose
    /// metadata must be on stable storage before this returns.
    func completeWrite(_ mapping: DiskWriteMapping, durable: Bool) throws(DiskError)
    /// The guest no longer needs [offset, offset + length): it may read back as zeros.
    func discard(offset: UInt64, length: UInt64) throws(DiskError)
    /// Makes the format's metadata durable (the engine has already synced the data files).
    func flush() throws(DiskError)
}

/// A host file behind an image, by its descriptor in the image's extents.
public struct DiskDataFile: Sendable, Equatable {
    public var fd: Int32
    public var path: String
    public var writable: Bool

    public init(fd: Int32, path: String, writable: Bool) {
        self.fd = fd
        self.path = path
        self.writable = writable
    }
}

/// How guest writes reach the host's storage.
public enum DiskCacheMode: String, Sendable, CaseIterable {
    /// O_DIRECT: no host page cache; a flush is an fdatasync.
    case none
    /// The host page cache; a flush is an fdatasync.
    case writeback
    /// The host page cache and flushes ignored: for scratch disks only.
    case unsafe
}

/// Why a disk operation failed, naming the file and what was wrong.
public struct DiskError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The file is not a disk this format can open (bad signature, checksum, structure).
        case corrupt
        /// A valid image using something Veneer does not implement (named in the message).
        case unsupported
        /// A host system call failed (errno kept).
        case io(errno: Int32)
        /// The request was outside the disk, or a write to a read-only disk.
        case invalidRequest
        /// The disk (or its file system) is full.
        case noSpace
    }

    public var kind: Kind
    public var path: String
    public var message: String

    public init(_ kind: Kind, path: String, _ message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}
