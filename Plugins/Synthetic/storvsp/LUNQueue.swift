import VeneerDisk

/// The I/O engine a channel uses for one LUN: the shape of VeneerDisk's `DiskQueue` (libaio,
/// completions signalled on an eventfd), so either that engine or the synchronous one below
/// serves a channel. Used from one thread at a time (the channel's).
protocol LUNQueue: AnyObject {
    /// Readable while completions wait (-1: every request completes inside `submit`).
    var eventFD: Int32 { get }
    /// Submitted and not yet reaped.
    var outstanding: Int { get }
    func submit(_ requests: [LUNRequest]) -> [LUNCompletion]
    func reap() -> [LUNCompletion]
    /// Waits for in-flight I/O, then releases the engine.
    func close()
}

struct LUNRequest: Sendable {
    enum Operation: Sendable {
        case read(offset: UInt64, buffers: [GuestBuffer.Piece])
        case write(offset: UInt64, buffers: [GuestBuffer.Piece], fua: Bool)
        case flush
        case discard(offset: UInt64, length: UInt64)
        case writeZeroes(offset: UInt64, length: UInt64)
    }
    var token: UInt64
    var operation: Operation
}

struct LUNCompletion: Sendable {
    var token: UInt64
    var result: Result<UInt64, DiskError>
}

/// Makes the engine for one LUN on one channel.
protocol LUNQueueFactory: Sendable {
    /// `unit` has an image (a CD drive without a medium never gets an engine).
    func makeQueue(for unit: LogicalUnit, image: any DiskImage) throws(DiskError) -> any LUNQueue
}
