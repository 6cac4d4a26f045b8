import VeneerDisk

/// The libaio engine (VeneerDisk's `DiskQueue`) behind one LUN on one channel: requests go to the
/// kernel in one io_submit per batch and complete on its eventfd, which the channel watches.
final class AsyncLUNQueue: LUNQueue {
    private let queue: DiskQueue

    init(image: any DiskImage, cache: DiskCacheMode, depth: Int) throws(DiskError) {
        queue = try DiskQueue(image: image, cache: cache, depth: depth)
    }

    var eventFD: Int32 { queue.eventFD }
    var outstanding: Int { queue.outstanding }

    func submit(_ requests: [LUNRequest]) -> [LUNCompletion] {
        queue.submit(requests.map { DiskRequest(token: $0.token, operation: Self.operation($0.operation)) }).map(Self.completion)
    }

    func reap() -> [LUNCompletion] { queue.reap().map(Self.completion) }
    func close() { queue.close() }

    private static func buffers(_ pieces: [GuestBuffer.Piece]) -> [DiskBuffer] { pieces.map { DiskBuffer(base: $0.base, count: $0.count) } }

    private static func operation(_ operation: LUNRequest.Operation) -> DiskOperation {
        switch operation {
        case .read(let offset, let pieces): .read(offset: offset, buffers: buffers(pieces))
        case .write(let offset, let pieces, let fua): .write(offset: offset, buffers: buffers(pieces), fua: fua)
        case .flush: .flush
        case .discard(let offset, let length): .discard(offset: offset, length: length)
        case .writeZeroes(let offset, let length): .writeZeroes(offset: offset, length: length)
        }
    }

    private static func completion(_ c: DiskCompletion) -> LUNCompletion { LUNCompletion(token: c.token, result: c.result) }
}

/// Makes libaio engines of the controller's queue depth.
struct AsyncQueueFactory: LUNQueueFactory {
    var depth: Int
    func makeQueue(for unit: LogicalUnit, image: any DiskImage) throws(DiskError) -> any LUNQueue {
        try AsyncLUNQueue(image: image, cache: unit.cache, depth: depth)
    }
}
