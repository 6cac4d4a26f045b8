#if canImport(Glibc)
import Glibc
#endif

/// A command's data buffer: host mappings of the guest-physical segments of one GPA-direct packet,
/// in order, covering exactly `count` bytes.
///
/// Invariants (this is the only file of the plugin that touches raw guest memory):
/// - every piece comes from the host's mem_map of a range the host checked to be guest RAM, and
///   guest RAM stays mapped for the VM's life, so a piece stays valid while I/O is in flight even
///   if the guest tears its buffers down (it then merely corrupts its own memory);
/// - every copy below is bounded by `count` and by each piece's own length, so no access leaves
///   the ranges the guest described.
struct GuestBuffer: @unchecked Sendable {
    struct Piece: @unchecked Sendable {
        var base: UnsafeMutableRawPointer
        var count: Int
    }

    private(set) var pieces: [Piece]
    let count: Int

    static let empty = GuestBuffer(pieces: [], count: 0)

    init(pieces: [Piece], count: Int) {
        self.pieces = pieces
        self.count = count
    }

    /// Maps the first `length` bytes described by `segments` (nil when a segment cannot be
    /// mapped, or the segments hold fewer bytes).
    static func map(segments: [(gpa: UInt64, length: UInt64)], length: Int,
                    mapper: (UInt64, UInt64) -> UnsafeMutableRawBufferPointer?) -> GuestBuffer? {
        var pieces: [Piece] = []
        var left = length
        for segment in segments where left > 0 {
            let take = Int(min(UInt64(left), segment.length))
            guard take > 0 else { continue }
            guard let mapped = mapper(segment.gpa, UInt64(take)), let base = mapped.baseAddress, mapped.count >= take else { return nil }
            pieces.append(Piece(base: base, count: take))
            left -= take
        }
        return left == 0 ? GuestBuffer(pieces: pieces, count: length) : nil
    }

    /// The pieces covering [offset, offset + length) of the buffer (clamped to it).
    func slice(offset: Int, length: Int) -> [Piece] {
        var result: [Piece] = []
        var skip = max(0, offset)
        var left = max(0, min(length, count - skip))
        for piece in pieces where left > 0 {
            if skip >= piece.count {
                skip -= piece.count
                continue
            }
            let take = min(piece.count - skip, left)
            result.append(Piece(base: piece.base + skip, count: take))
            left -= take
            skip = 0
        }
        return result
    }

    /// Copies `bytes` to the start of the buffer; returns how many fit.
    @discardableResult
    func copyIn(_ bytes: [UInt8]) -> Int {
        var done = 0
        bytes.withUnsafeBytes { source in
            for piece in pieces where done < bytes.count {
                let take = min(piece.count, bytes.count - done)
                guard let from = source.baseAddress else { return }
                memcpy(piece.base, from + done, take)
                done += take
            }
        }
        return done
    }

    /// The first `length` bytes of the buffer (fewer if it is shorter).
    func copyOut(_ length: Int) -> [UInt8] {
        let wanted = max(0, min(length, count))
        var bytes = [UInt8](repeating: 0, count: wanted)
        var done = 0
        bytes.withUnsafeMutableBytes { target in
            for piece in pieces where done < wanted {
                let take = min(piece.count, wanted - done)
                guard let to = target.baseAddress else { return }
                memcpy(to + done, piece.base, take)
                done += take
            }
        }
        return bytes
    }
}
