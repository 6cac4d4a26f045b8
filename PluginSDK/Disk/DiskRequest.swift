// What a storage front end (storvsp) asks of a DiskQueue, and what it gets back.

/// A piece of memory a request reads into or writes from: guest RAM mapped by the host, or any
/// buffer the caller owns. It must stay valid until the request's completion.
public struct DiskBuffer: @unchecked Sendable {
    public var base: UnsafeMutableRawPointer
    public var count: Int

    public init(base: UnsafeMutableRawPointer, count: Int) {
        self.base = base
        self.count = count
    }
}

/// One disk operation. Offsets and lengths are bytes, multiples of the logical block size.
public enum DiskOperation: Sendable {
    /// Fills `buffers`, in order, from [offset, offset + their total length).
    case read(offset: UInt64, buffers: [DiskBuffer])
    /// Writes `buffers`, in order, to [offset, offset + their total length). `fua`: durable when
    /// complete (a SCSI FUA write); ignored in `unsafe` cache mode.
    case write(offset: UInt64, buffers: [DiskBuffer], fua: Bool)
    /// Makes every write completed before it durable.
    case flush
    /// The guest no longer needs the range (UNMAP): it may read back as zeros afterwards.
    case discard(offset: UInt64, length: UInt64)
    /// The range reads as zeros afterwards (WRITE SAME with zeros).
    case writeZeroes(offset: UInt64, length: UInt64)
}

/// An operation and the caller's token for it, handed back in its completion.
public struct DiskRequest: Sendable {
    public var token: UInt64
    public var operation: DiskOperation

    public init(token: UInt64, operation: DiskOperation) {
        self.token = token
        self.operation = operation
    }
}

/// How a request ended: bytes moved (the range's length for discard and writeZeroes, 0 for flush)
/// or why it failed.
public struct DiskCompletion: Sendable, Equatable {
    public var token: UInt64
    public var result: Result<UInt64, DiskError>

    public init(token: UInt64, result: Result<UInt64, DiskError>) {
        self.token = token
        self.result = result
    }
}
