import Glibc

// Byte work on request memory: slicing a request's buffers along extents, zero-filling the parts
// of a read nothing was written to, and aligned bounce buffers for O_DIRECT.
//
// Invariants: every DiskBuffer handed to these functions names `count` valid bytes (the caller of
// DiskQueue.submit promises that for a request's buffers until its completion; the engine's own
// buffers are allocated here). Slices never go beyond the buffer they are cut from.

extension DiskBuffer {
    /// Whether O_DIRECT can use this memory as is: address and length multiples of `alignment`.
    func isAligned(to alignment: UInt64) -> Bool {
        UInt64(UInt(bitPattern: base)) % alignment == 0 && UInt64(count) % alignment == 0
    }
}

/// Walks a request's buffers, handing out consecutive byte ranges of them.
struct BufferCursor {
    private let buffers: [DiskBuffer]
    private var index = 0
    private var offset = 0

    init(_ buffers: [DiskBuffer]) { self.buffers = buffers }

    /// The next `length` bytes as slices of the buffers (fewer if the buffers run out).
    mutating func take(_ length: UInt64) -> [DiskBuffer] {
        var slices: [DiskBuffer] = []
        var left = length
        while left > 0, index < buffers.count {
            let buffer = buffers[index]
            let available = UInt64(buffer.count - offset)
            if available == 0 {
                index += 1
                offset = 0
                continue
            }
            let piece = min(available, left)
            slices.append(DiskBuffer(base: buffer.base + offset, count: Int(piece)))
            left -= piece
            offset += Int(piece)
            if offset == buffer.count {
                index += 1
                offset = 0
            }
        }
        return slices
    }
}

/// The same slices with the first `bytes` bytes dropped (what is left after a short transfer).
func dropping(_ bytes: UInt64, from slices: [DiskBuffer]) -> [DiskBuffer] {
    var cursor = BufferCursor(slices)
    _ = cursor.take(bytes)
    return cursor.take(UInt64.max)
}

/// Fills the slices with zeros (a read of an extent nobody wrote).
func zeroFill(_ slices: [DiskBuffer]) {
    for slice in slices { memset(slice.base, 0, slice.count) }
}

/// Page-aligned memory O_DIRECT can use in place of guest memory it cannot.
final class BounceBuffer {
    let buffer: DiskBuffer

    /// nil when the allocation fails.
    init?(count: Int, alignment: Int) {
        var memory: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&memory, max(alignment, 4096), max(count, 1)) == 0, let memory else { return nil }
        buffer = DiskBuffer(base: memory, count: count)
    }

    deinit { free(buffer.base) }

    /// Copies the slices in order into the buffer (before a write).
    func fill(from slices: [DiskBuffer]) {
        var at = 0
        for slice in slices {
            memcpy(buffer.base + at, slice.base, slice.count)
            at += slice.count
        }
    }

    /// Copies the buffer out into the slices in order (after a read).
    func spill(into slices: [DiskBuffer]) {
        var at = 0
        for slice in slices {
            memcpy(slice.base, buffer.base + at, slice.count)
            at += slice.count
        }
    }
}

/// Zeros that writes of zeros point their iovecs at: allocated once, never written.
final class ZeroBlock: @unchecked Sendable {
    static let size = 256 * 1024
    /// nil only if the process could not allocate 256 KiB at start.
    static let shared = ZeroBlock()

    let base: UnsafeMutableRawPointer

    private init?() {
        var memory: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&memory, 4096, ZeroBlock.size) == 0, let memory else { return nil }
        memset(memory, 0, ZeroBlock.size)
        base = memory
    }

    /// Slices of the block covering `length` bytes.
    func slices(_ length: UInt64) -> [DiskBuffer] {
        var slices: [DiskBuffer] = []
        var left = length
        while left > 0 {
            let piece = min(left, UInt64(ZeroBlock.size))
            slices.append(DiskBuffer(base: base, count: Int(piece)))
            left -= piece
        }
        return slices
    }
}
