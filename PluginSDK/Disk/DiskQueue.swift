import CLibAIO
import Glibc

/// Moves one channel's disk requests with libaio: one io_context per queue, completions signalled
/// on `eventFD`, at most `depth` transfers in the kernel and the rest in a FIFO backlog, no threads.
///
/// A request becomes one "piece" (one iocb) per extent of the image it touches (more if an extent
/// needs over IOV_MAX iovecs); the request completes when all its pieces have. Formats do their
/// metadata work synchronously inside `submit` (mapping) and `reap` (publishing a write).
///
/// Not thread-safe: one thread at a time (one queue per VMBus channel). Several queues may share
/// one image, which is thread-safe.
///
/// Use from an event loop: `fd_watch(queue.eventFD)`; hand each batch of guest requests to
/// `submit` and answer the completions it returns at once; when the eventfd is readable, `reap`
/// and answer those. Tokens are the caller's (a VMBus transaction id, say); each request gets
/// exactly one completion, from `submit` or from a later `reap`. Buffers must stay mapped until then.
public final class DiskQueue {
    public let depth: Int
    /// Readable while completions wait to be reaped: watch it with fd_watch, then call `reap`.
    public var eventFD: Int32 { ring.eventFD }
    /// Requests submitted and not yet completed by `reap` (including those in the backlog).
    public var outstanding: Int { active }

    private let image: any DiskImage
    private let cache: DiskCacheMode
    private let ring: AIORing
    private var files: DiskQueueFiles
    private let blockSize: UInt64
    private let virtualSize: UInt64

    private var requests: [RequestState?] = []
    private var freeRequests: [Int] = []
    private var active = 0
    /// The piece each slot in the kernel is moving.
    private var inKernel: [Piece?]
    /// Pieces waiting for a slot: `retries` (resubmissions, taken first) then `backlog` in FIFO order.
    private var retries: [Piece] = []
    private var backlog: [Piece] = []
    private var backlogHead = 0
    private var closed = false

    // Kernel features, assumed present until the kernel says otherwise (tests can turn them off).
    /// FUA writes as RWF_DSYNC writes; without it, a write then an fdatasync of each file touched.
    var usesDSyncWrites = true
    /// Flushes as IOCB_CMD_FDSYNC (Linux 4.18+); without it, fdatasync inside submit or reap.
    var usesAIODataSync = true
    /// writeZeroes as fallocate(ZERO_RANGE) where the file system has it; without it, zeros written.
    var usesZeroRange = true
    /// fdatasyncs of data files done (through AIO or directly): what tests of FUA and flush observe.
    private(set) var dataSyncs = 0

    /// IOV_MAX: the most iovecs one iocb takes.
    private static let maximumSegments = 1024

    public init(image: any DiskImage, cache: DiskCacheMode, depth: Int = 128) throws(DiskError) {
        guard depth >= 1, depth <= 65536 else {
            throw DiskError(.invalidRequest, path: image.path, "queue depth \(depth) is outside 1...65536")
        }
        let geometry = image.geometry
        guard geometry.logicalBlockSize > 0 else {
            throw DiskError(.corrupt, path: image.path, "logical block size is 0")
        }
        self.image = image
        self.cache = cache
        self.depth = depth
        blockSize = UInt64(geometry.logicalBlockSize)
        virtualSize = geometry.virtualSize
        files = try DiskQueueFiles(image: image, cache: cache)
        do {
            ring = try AIORing(depth: depth)
        } catch {
            files.close()
            let hint = error.errno == EAGAIN ? " (the system's aio-max-nr is used up)" : ""
            throw DiskError(.io(errno: error.errno), path: image.path, "\(error.call) failed: \(describe(error.errno))\(hint)")
        }
        inKernel = Array(repeating: nil, count: depth)
    }

    deinit { close() }

    /// Starts `requests` with one io_submit (plus the backlog's, as slots allow). Returns the ones
    /// that completed at once: refused requests, reads of unwritten ranges, discards, flushes that
    /// need no I/O; the others complete through `reap`.
    public func submit(_ requests: [DiskRequest]) -> [DiskCompletion] {
        var completed: [DiskCompletion] = []
        guard !closed else {
            return requests.map {
                DiskCompletion(token: $0.token, result: .failure(DiskError(.invalidRequest, path: image.path, "the disk queue is closed")))
            }
        }
        for request in requests { start(request, &completed) }
        pump(&completed)
        return completed
    }

    /// Completions that have arrived, without blocking; also submits backlog the freed slots allow.
    public func reap() -> [DiskCompletion] {
        guard !closed else { return [] }
        var completed: [DiskCompletion] = []
        ring.clearEventFD()
        for event in ring.collect(wait: false) { finish(slot: event.slot, result: event.result, &completed) }
        pump(&completed)
        return completed
    }

    /// Finishes every request (backlog included, writes published to the format), waiting for the
    /// kernel, and closes the O_DIRECT descriptors; the io_context and eventfd go with the queue.
    /// The completions are dropped; later submits fail.
    public func close() {
        guard !closed else { return }
        var dropped: [DiskCompletion] = []
        while true {
            pump(&dropped)
            if ring.inFlight == 0 {
                if retries.isEmpty && backlogHead == backlog.count { break }
                continue
            }
            let events = ring.collect(wait: true)
            // io_getevents failing outright leaves nothing to wait with; io_destroy in the ring's
            // deinit still waits for the kernel before the iocbs' memory goes.
            if events.isEmpty { break }
            for event in events { finish(slot: event.slot, result: event.result, &dropped) }
        }
        closed = true
        files.close()
    }

    // MARK: Starting requests

    private func start(_ request: DiskRequest, _ completed: inout [DiskCompletion]) {
        do throws(DiskError) {
            switch request.operation {
            case .read(let offset, let buffers):
                try startRead(request.token, offset: offset, buffers: buffers, &completed)
            case .write(let offset, let buffers, let fua):
                try startWrite(request.token, offset: offset, buffers: buffers, fua: fua, &completed)
            case .flush:
                try startFlush(request.token, &completed)
            case .discard(let offset, let length):
                try check(offset: offset, length: length, writing: true)
                if image.supportsDiscard && length > 0 { try image.discard(offset: offset, length: length) }
                completed.append(DiskCompletion(token: request.token, result: .success(length)))
            case .writeZeroes(let offset, let length):
                try startWriteZeroes(request.token, offset: offset, length: length, &completed)
            }
        } catch {
            completed.append(DiskCompletion(token: request.token, result: .failure(error)))
        }
    }

    private func startRead(_ token: UInt64, offset: UInt64, buffers: [DiskBuffer], _ completed: inout [DiskCompletion]) throws(DiskError) {
        let length = try totalLength(buffers)
        try check(offset: offset, length: length, writing: false)
        let extents = try length == 0 ? [] : image.mapForRead(offset: offset, length: length)
        try checkCoverage(extents, length: length, offset: offset, writing: false)
        let id = newRequest(RequestState(token: token, kind: .read, bytes: length))
        var cursor = BufferCursor(buffers)
        var pieces: [Piece] = []
        do throws(DiskError) {
            for extent in extents {
                let slices = cursor.take(extent.length)
                switch extent {
                case .zero:
                    zeroFill(slices)
                case .file(let fd, let fileOffset, _):
                    pieces += try plan(.read, request: id, fd: fd, fileOffset: fileOffset, slices: slices, dsync: false)
                }
            }
        } catch {
            release(id)
            throw error
        }
        launch(id, pieces, &completed)
    }

    private func startWrite(_ token: UInt64, offset: UInt64, buffers: [DiskBuffer], fua: Bool, _ completed: inout [DiskCompletion]) throws(DiskError) {
        let length = try totalLength(buffers)
        try check(offset: offset, length: length, writing: true)
        guard length > 0 else {
            completed.append(DiskCompletion(token: token, result: .success(0)))
            return
        }
        let mapping = try image.mapForWrite(offset: offset, length: length)
        try checkCoverage(mapping.extents, length: length, offset: offset, writing: true)
        let durable = fua && cache != .unsafe
        var state = RequestState(token: token, kind: .write, bytes: length)
        state.mapping = mapping
        state.durable = durable
        let id = newRequest(state)
        var cursor = BufferCursor(buffers)
        var pieces: [Piece] = []
        do throws(DiskError) {
            for extent in mapping.extents {
                guard case .file(let fd, let fileOffset, let extentLength) = extent else { continue }
                let slices = cursor.take(extentLength)
                pieces += try plan(.write, request: id, fd: fd, fileOffset: fileOffset, slices: slices, dsync: durable && usesDSyncWrites)
            }
        } catch {
            release(id)
            throw error
        }
        if durable && !usesDSyncWrites { requests[id]?.syncAfter = Set(pieces.map(\.file)) }
        launch(id, pieces, &completed)
    }

    private func startFlush(_ token: UInt64, _ completed: inout [DiskCompletion]) throws(DiskError) {
        guard cache != .unsafe else {
            completed.append(DiskCompletion(token: token, result: .success(0)))
            return
        }
        let writable = files.files.indices.filter { files[$0].writable }
        guard usesAIODataSync, !writable.isEmpty else {
            for index in writable { try syncNow(index) }
            try image.flush()
            completed.append(DiskCompletion(token: token, result: .success(0)))
            return
        }
        let id = newRequest(RequestState(token: token, kind: .flush, bytes: 0))
        launch(id, writable.map { Piece(dataSyncOf: $0, request: id) }, &completed)
    }

    private func startWriteZeroes(_ token: UInt64, offset: UInt64, length: UInt64, _ completed: inout [DiskCompletion]) throws(DiskError) {
        try check(offset: offset, length: length, writing: true)
        guard length > 0 else {
            completed.append(DiskCompletion(token: token, result: .success(0)))
            return
        }
        let mapping = try image.mapForWrite(offset: offset, length: length)
        try checkCoverage(mapping.extents, length: length, offset: offset, writing: true)
        var state = RequestState(token: token, kind: .write, bytes: length)
        state.mapping = mapping
        let id = newRequest(state)
        var pieces: [Piece] = []
        do throws(DiskError) {
            for extent in mapping.extents {
                guard case .file(let fd, let fileOffset, let extentLength) = extent else { continue }
                guard let index = files.index(ofImageFD: fd) else { throw unknownFile(fd) }
                if usesZeroRange && files[index].zeroRangeWorks {
                    let code = veneer_aio_zero_range(files[index].ioFD, Int64(fileOffset), Int64(extentLength))
                    if code == 0 { continue }
                    guard code == EOPNOTSUPP || code == EINVAL || code == ENOSYS else {
                        throw failure(code, file: index, "zeroing \(extentLength) bytes at offset \(fileOffset)")
                    }
                    files[index].zeroRangeWorks = false
                }
                guard let zeros = ZeroBlock.shared else {
                    throw DiskError(.io(errno: ENOMEM), path: image.path, "no memory for a block of zeros")
                }
                // One IOV_MAX run of the zero block at a time: a guest's WRITE SAME over a whole
                // disk must not become one array of millions of iovecs.
                let run = UInt64(Self.maximumSegments * ZeroBlock.size)
                let fullRun = extentLength >= run ? zeros.slices(run) : []
                var done: UInt64 = 0
                while done < extentLength {
                    let part = min(run, extentLength - done)
                    pieces += try plan(.write, request: id, fd: fd, fileOffset: fileOffset + done,
                                       slices: part == run ? fullRun : zeros.slices(part), dsync: false)
                    done += part
                }
            }
        } catch {
            release(id)
            throw error
        }
        launch(id, pieces, &completed)
    }

    // MARK: Request checks

    private func totalLength(_ buffers: [DiskBuffer]) throws(DiskError) -> UInt64 {
        var total: UInt64 = 0
        for buffer in buffers {
            guard buffer.count >= 0 else {
                throw DiskError(.invalidRequest, path: image.path, "a buffer has a negative length (\(buffer.count))")
            }
            let (sum, overflow) = total.addingReportingOverflow(UInt64(buffer.count))
            guard !overflow else { throw DiskError(.invalidRequest, path: image.path, "the buffers' total length overflows") }
            total = sum
        }
        return total
    }

    private func check(offset: UInt64, length: UInt64, writing: Bool) throws(DiskError) {
        if writing && image.isReadOnly {
            throw DiskError(.invalidRequest, path: image.path, "write to a read-only disk")
        }
        guard offset % blockSize == 0, length % blockSize == 0 else {
            throw DiskError(.invalidRequest, path: image.path,
                            "offset \(offset) and length \(length) must be multiples of the \(blockSize)-byte logical block")
        }
        guard offset <= virtualSize, length <= virtualSize - offset else {
            throw DiskError(.invalidRequest, path: image.path,
                            "bytes \(offset)..<\(offset &+ length) are outside the disk (\(virtualSize) bytes)")
        }
    }

    /// A format's extents must cover exactly the request, name declared files, and (for writes)
    /// only writable ones: anything else would move the wrong bytes.
    private func checkCoverage(_ extents: [DiskExtent], length: UInt64, offset: UInt64, writing: Bool) throws(DiskError) {
        var covered: UInt64 = 0
        for extent in extents {
            if case .file(let fd, _, _) = extent {
                guard let index = files.index(ofImageFD: fd) else { throw unknownFile(fd) }
                if writing && !files[index].writable {
                    throw DiskError(.io(errno: EBADF), path: files[index].path, "the format mapped a write to this read-only file")
                }
            } else if writing {
                throw DiskError(.corrupt, path: image.path, "the format mapped a write to a zero extent")
            }
            let (sum, overflow) = covered.addingReportingOverflow(extent.length)
            guard !overflow else { break }
            covered = sum
        }
        guard covered == length else {
            throw DiskError(.corrupt, path: image.path,
                            "the format mapped \(covered) bytes for a request of \(length) at offset \(offset)")
        }
    }

    private func unknownFile(_ fd: Int32) -> DiskError {
        DiskError(.corrupt, path: image.path, "the format named descriptor \(fd), which is not one of its data files")
    }

    // MARK: Pieces

    /// The pieces (iocbs) moving `slices` to or from `fd` at `fileOffset`: one per IOV_MAX slices,
    /// each through a bounce buffer or the page-cache descriptor where O_DIRECT cannot take it.
    private func plan(_ kind: Piece.Kind, request: Int, fd: Int32, fileOffset: UInt64, slices: [DiskBuffer], dsync: Bool) throws(DiskError) -> [Piece] {
        guard let index = files.index(ofImageFD: fd) else { throw unknownFile(fd) }
        let file = files[index]
        var pieces: [Piece] = []
        var at = fileOffset
        var start = 0
        while start < slices.count {
            let chunk = slices.count <= Self.maximumSegments ? slices : Array(slices[start..<min(start + Self.maximumSegments, slices.count)])
            start += chunk.count
            let length = chunk.reduce(UInt64(0)) { $0 + UInt64($1.count) }
            var piece = Piece(kind: kind, request: request, file: index, fileOffset: at, slices: chunk, length: length, dsync: dsync)
            at += length
            if file.direct {
                if at % file.offsetAlignment != 0 || piece.fileOffset % file.offsetAlignment != 0 {
                    piece.buffered = true
                } else if !chunk.allSatisfy({ $0.isAligned(to: file.memoryAlignment) }) {
                    guard let bounce = BounceBuffer(count: Int(length), alignment: Int(file.memoryAlignment)) else {
                        throw DiskError(.io(errno: ENOMEM), path: file.path, "no memory for a \(length)-byte bounce buffer")
                    }
                    if kind == .write { bounce.fill(from: chunk) }
                    piece.bounce = bounce
                }
            }
            pieces.append(piece)
        }
        return pieces
    }

    /// Queues a request's pieces, or completes it now if it has none.
    private func launch(_ id: Int, _ pieces: [Piece], _ completed: inout [DiskCompletion]) {
        requests[id]?.pending = pieces.count
        guard !pieces.isEmpty else {
            settle(id, &completed)
            return
        }
        backlog += pieces
    }

    /// Submits waiting pieces while slots are free: one io_submit per batch.
    private func pump(_ completed: inout [DiskCompletion]) {
        while !ring.freeSlots.isEmpty && (!retries.isEmpty || backlogHead < backlog.count) {
            var slots: [Int] = []
            while let slot = ring.reserveSlot() {
                guard let piece = nextWaiting() else {
                    ring.releaseSlot(slot)
                    break
                }
                prepare(piece, in: slot)
                slots.append(slot)
            }
            var taken = 0
            while taken < slots.count {
                let result = ring.submit(slots[taken...])
                if result > 0 {
                    taken += result
                    continue
                }
                let code = result < 0 ? Int32(-result) : EAGAIN
                if code == EAGAIN && ring.inFlight > 0 {
                    // The kernel is out of room for now: give the rest back and wait for completions.
                    for slot in slots[taken...].reversed() { unprepare(slot) }
                    compactBacklog()
                    return
                }
                // The kernel refused the first one outright: that piece fails (or falls back).
                let slot = slots[taken]
                taken += 1
                finish(slot: slot, result: -Int64(code), &completed)
            }
            compactBacklog()
        }
    }

    private func nextWaiting() -> Piece? {
        if let piece = retries.popLast() { return piece }
        guard backlogHead < backlog.count else { return nil }
        backlogHead += 1
        return backlog[backlogHead - 1]
    }

    private func compactBacklog() {
        if backlogHead == backlog.count {
            backlog.removeAll(keepingCapacity: true)
            backlogHead = 0
        } else if backlogHead > 4096 {
            backlog.removeFirst(backlogHead)
            backlogHead = 0
        }
    }

    private func prepare(_ piece: Piece, in slot: Int) {
        let file = files[piece.file]
        let fd = piece.buffered ? file.imageFD : file.ioFD
        switch piece.kind {
        case .dataSync:
            ring.prepareDataSync(slot: slot, fd: fd)
        case .read, .write:
            let memory = piece.bounce.map { [DiskBuffer(base: $0.buffer.base, count: $0.buffer.count)] } ?? piece.slices
            ring.prepareTransfer(slot: slot, write: piece.kind == .write, fd: fd, offset: piece.fileOffset + piece.done,
                                 segments: piece.done == 0 ? memory : dropping(piece.done, from: memory), dsync: piece.dsync)
        }
        inKernel[slot] = piece
    }

    /// Takes a prepared piece back out of its slot (the kernel did not accept it).
    private func unprepare(_ slot: Int) {
        if let piece = inKernel[slot] { retries.append(piece) }
        inKernel[slot] = nil
        ring.releaseSlot(slot)
    }

    /// A piece's iocb ended with `result` (bytes, or a negative errno).
    private func finish(slot: Int, result: Int64, _ completed: inout [DiskCompletion]) {
        guard var piece = inKernel[slot] else { return }
        inKernel[slot] = nil
        ring.releaseSlot(slot)
        let file = files[piece.file]

        if result < 0 {
            var code = Int32(truncatingIfNeeded: -result)
            switch piece.kind {
            case .read, .write:
                if code == EINVAL && file.direct && !piece.buffered {
                    // O_DIRECT refused this memory or range after all: the page cache takes anything.
                    piece.buffered = true
                    retries.append(piece)
                    return
                }
                if piece.dsync && (code == EINVAL || code == EOPNOTSUPP) {
                    // No RWF_DSYNC here: write plainly, then fdatasync the file (and do so from now on).
                    usesDSyncWrites = false
                    piece.dsync = false
                    requests[piece.request]?.syncAfter.insert(piece.file)
                    retries.append(piece)
                    return
                }
            case .dataSync:
                if code == EINVAL {
                    // No IOCB_CMD_FDSYNC (before Linux 4.18): sync here, and in flushes from now on.
                    usesAIODataSync = false
                    code = fdatasync(file.ioFD) == 0 ? 0 : errno
                    if code == 0 {
                        dataSyncs += 1
                        pieceDone(piece.request, error: nil, &completed)
                        return
                    }
                }
            }
            pieceDone(piece.request, error: failure(code, file: piece.file, piece.describe()), &completed)
            return
        }

        guard piece.kind != .dataSync else {
            dataSyncs += 1
            pieceDone(piece.request, error: nil, &completed)
            return
        }
        let moved = min(UInt64(result), piece.length - piece.done)
        piece.done += moved
        if piece.done < piece.length {
            guard moved > 0 else {
                let error = DiskError(.io(errno: EIO), path: file.path,
                                      "\(piece.describe()) stopped after \(piece.done) bytes at the end of the file")
                pieceDone(piece.request, error: error, &completed)
                return
            }
            retries.append(piece)  // a short transfer: move the rest
            return
        }
        if piece.kind == .read, let bounce = piece.bounce { bounce.spill(into: piece.slices) }
        pieceDone(piece.request, error: nil, &completed)
    }

    private func pieceDone(_ id: Int, error: DiskError?, _ completed: inout [DiskCompletion]) {
        guard var state = requests[id] else { return }
        state.pending -= 1
        if state.error == nil, let error { state.error = error }
        requests[id] = state
        guard state.pending == 0 else { return }
        if state.error == nil && !state.syncAfter.isEmpty {
            // FUA without RWF_DSYNC: the data is written; now fdatasync every file it went to.
            let syncs = state.syncAfter.sorted().map { Piece(dataSyncOf: $0, request: id) }
            requests[id]?.syncAfter = []
            requests[id]?.pending = syncs.count
            retries += syncs
            return
        }
        settle(id, &completed)
    }

    /// All of a request's pieces are done: publish a write's metadata or the format's flush, complete.
    private func settle(_ id: Int, _ completed: inout [DiskCompletion]) {
        guard let state = requests[id] else { return }
        var result: Result<UInt64, DiskError> = state.error.map { .failure($0) } ?? .success(state.bytes)
        if state.error == nil {
            do throws(DiskError) {
                switch state.kind {
                case .read: break
                case .write: if let mapping = state.mapping { try image.completeWrite(mapping, durable: state.durable) }
                case .flush: try image.flush()
                }
            } catch {
                result = .failure(error)
            }
        }
        release(id)
        completed.append(DiskCompletion(token: state.token, result: result))
    }

    private func syncNow(_ index: Int) throws(DiskError) {
        guard fdatasync(files[index].ioFD) == 0 else { throw failure(errno, file: index, "fdatasync") }
        dataSyncs += 1
    }

    private func failure(_ code: Int32, file index: Int, _ what: String) -> DiskError {
        let path = files[index].path
        if code == ENOSPC || code == EDQUOT {
            return DiskError(.noSpace, path: path, "\(what): no space left (\(describe(code)))")
        }
        return DiskError(.io(errno: code), path: path, "\(what) failed: \(describe(code))")
    }

    // MARK: Request table

    private func newRequest(_ state: RequestState) -> Int {
        active += 1
        if let id = freeRequests.popLast() {
            requests[id] = state
            return id
        }
        requests.append(state)
        return requests.count - 1
    }

    private func release(_ id: Int) {
        guard requests[id] != nil else { return }
        requests[id] = nil
        freeRequests.append(id)
        active -= 1
    }
}

/// A request while its pieces are moving.
private struct RequestState {
    enum Kind { case read, write, flush }
    var token: UInt64
    var kind: Kind
    /// What a success reports: the request's length.
    var bytes: UInt64
    /// Pieces submitted or waiting that have not finished.
    var pending = 0
    /// The first error of any piece.
    var error: DiskError?
    /// A write's mapping, published through completeWrite once every piece is written.
    var mapping: DiskWriteMapping?
    var durable = false
    /// FUA without RWF_DSYNC: the files to fdatasync once the data pieces are done.
    var syncAfter: Set<Int> = []

    init(token: UInt64, kind: Kind, bytes: UInt64) {
        self.token = token
        self.kind = kind
        self.bytes = bytes
    }
}

/// One iocb's worth of a request: a transfer of one extent's bytes (or part of them), or an fdatasync.
private struct Piece {
    enum Kind { case read, write, dataSync }
    var kind: Kind
    var request: Int
    /// Index in the queue's files.
    var file: Int
    var fileOffset: UInt64
    /// The request's memory this piece moves, in order.
    var slices: [DiskBuffer]
    var length: UInt64
    var dsync: Bool
    /// Bytes already moved (a short transfer is resubmitted for the rest).
    var done: UInt64 = 0
    /// Through the image's page-cache descriptor rather than the queue's O_DIRECT one.
    var buffered = false
    /// Aligned memory standing in for `slices` under O_DIRECT.
    var bounce: BounceBuffer?

    init(kind: Kind, request: Int, file: Int, fileOffset: UInt64, slices: [DiskBuffer], length: UInt64, dsync: Bool) {
        self.kind = kind
        self.request = request
        self.file = file
        self.fileOffset = fileOffset
        self.slices = slices
        self.length = length
        self.dsync = dsync
    }

    init(dataSyncOf file: Int, request: Int) {
        self.init(kind: .dataSync, request: request, file: file, fileOffset: 0, slices: [], length: 0, dsync: false)
    }

    func describe() -> String {
        switch kind {
        case .read: "read of \(length) bytes at offset \(fileOffset)"
        case .write: "write of \(length) bytes at offset \(fileOffset)"
        case .dataSync: "fdatasync"
        }
    }
}
