import VeneerDisk
@testable import StorVSP
#if canImport(Glibc)
import Glibc
#endif

/// A test engine that does every request inside `submit` with pread/pwrite on the image's
/// extents (following the DiskImage write protocol: map, write, complete), so channel tests see
/// their results at once. Writes go through the page cache; flushes and FUA writes fdatasync.
final class SynchronousLUNQueue: LUNQueue {
    let image: any DiskImage
    let cache: DiskCacheMode
    private(set) var outstanding = 0
    var eventFD: Int32 { -1 }

    init(image: any DiskImage, cache: DiskCacheMode) {
        self.image = image
        self.cache = cache
    }

    func submit(_ requests: [LUNRequest]) -> [LUNCompletion] {
        requests.map { LUNCompletion(token: $0.token, result: perform($0.operation)) }
    }

    func reap() -> [LUNCompletion] { [] }
    func close() {}

    private func failure(_ what: String) -> DiskError {
        DiskError(.io(errno: errno), path: image.path, "\(what): \(String(cString: strerror(errno)))")
    }

    private func perform(_ operation: LUNRequest.Operation) -> Result<UInt64, DiskError> {
        do throws(DiskError) {
            switch operation {
            case .read(let offset, let buffers):
                let length = UInt64(buffers.reduce(0) { $0 + $1.count })
                try read(extents: image.mapForRead(offset: offset, length: length), into: buffers)
                return .success(length)
            case .write(let offset, let buffers, let fua):
                let length = UInt64(buffers.reduce(0) { $0 + $1.count })
                let mapping = try image.mapForWrite(offset: offset, length: length)
                try write(extents: mapping.extents, from: buffers)
                if fua { try syncData() }
                try image.completeWrite(mapping, durable: fua)
                return .success(length)
            case .flush:
                try syncData()
                if cache != .unsafe { try image.flush() }
                return .success(0)
            case .discard(let offset, let length):
                try image.discard(offset: offset, length: length)
                return .success(0)
            case .writeZeroes(let offset, let length):
                let chunk = 1 << 20
                var zeros = [UInt8](repeating: 0, count: chunk)
                var done: UInt64 = 0
                while done < length {
                    let take = Int(min(UInt64(chunk), length - done))
                    let mapping = try image.mapForWrite(offset: offset + done, length: UInt64(take))
                    let outcome: Result<Void, DiskError> = zeros.withUnsafeMutableBytes { raw in
                        guard let base = raw.baseAddress else { return .success(()) }
                        do throws(DiskError) {
                            try write(extents: mapping.extents, from: [GuestBuffer.Piece(base: base, count: take)])
                            return .success(())
                        } catch { return .failure(error) }
                    }
                    try outcome.get()
                    try image.completeWrite(mapping, durable: false)
                    done += UInt64(take)
                }
                return .success(length)
            }
        } catch {
            return .failure(error)
        }
    }

    private func syncData() throws(DiskError) {
        guard cache != .unsafe else { return }
        for file in image.dataFiles where file.writable {
            if fdatasync(file.fd) != 0 { throw failure("fdatasync") }
        }
    }

    /// Walks extents and buffer pieces together; `body` moves one run that lies in one of each.
    private func walk(_ extents: [DiskExtent], _ buffers: [GuestBuffer.Piece],
                      _ body: (DiskExtent, UInt64, UnsafeMutableRawPointer, Int) throws(DiskError) -> Void) throws(DiskError) {
        var pieceIndex = 0, pieceOffset = 0
        for extent in extents {
            var extentDone: UInt64 = 0
            while extentDone < extent.length {
                guard pieceIndex < buffers.count else { throw DiskError(.invalidRequest, path: image.path, "extents longer than the buffers") }
                let piece = buffers[pieceIndex]
                let take = Int(min(extent.length - extentDone, UInt64(piece.count - pieceOffset)))
                try body(extent, extentDone, piece.base + pieceOffset, take)
                extentDone += UInt64(take)
                pieceOffset += take
                if pieceOffset == piece.count {
                    pieceIndex += 1
                    pieceOffset = 0
                }
            }
        }
    }

    private func read(extents: [DiskExtent], into buffers: [GuestBuffer.Piece]) throws(DiskError) {
        try walk(extents, buffers) { extent, within, pointer, count throws(DiskError) in
            switch extent {
            case .zero:
                memset(pointer, 0, count)
            case .file(let fd, let offset, _):
                var done = 0
                while done < count {
                    let n = pread(fd, pointer + done, count - done, off_t(offset + within) + off_t(done))
                    if n < 0 && errno == EINTR { continue }
                    if n < 0 { throw failure("read at \(offset + within)") }
                    if n == 0 {
                        // Past the end of a sparse or short file: the rest reads as zeros.
                        memset(pointer + done, 0, count - done)
                        break
                    }
                    done += n
                }
            }
        }
    }

    private func write(extents: [DiskExtent], from buffers: [GuestBuffer.Piece]) throws(DiskError) {
        try walk(extents, buffers) { extent, within, pointer, count throws(DiskError) in
            guard case .file(let fd, let offset, _) = extent else {
                throw DiskError(.invalidRequest, path: image.path, "a write mapping with a zero extent")
            }
            var done = 0
            while done < count {
                let n = pwrite(fd, pointer + done, count - done, off_t(offset + within) + off_t(done))
                if n < 0 && errno == EINTR { continue }
                if n < 0 { throw errno == ENOSPC ? DiskError(.noSpace, path: image.path, "no space left") : failure("write at \(offset + within)") }
                done += n
            }
        }
    }
}

/// Makes synchronous engines.
struct SynchronousQueueFactory: LUNQueueFactory {
    func makeQueue(for unit: LogicalUnit, image: any DiskImage) throws(DiskError) -> any LUNQueue {
        SynchronousLUNQueue(image: image, cache: unit.cache)
    }
}
