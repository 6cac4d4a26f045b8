#if canImport(Glibc)
import Glibc
#endif

/// A guest buffer (netvsc's receive or send buffer, or one packet's GPA-direct ranges) as host
/// pointers: pieces in buffer order, each a mapping of guest RAM, addressed by one byte offset.
///
/// Unsafe-pointer invariants (this file and `IOVecList` are the plugin's only raw-memory code):
/// - every piece is the host's `mem_map` of a range the host checked to be guest RAM, and guest RAM
///   stays mapped for the VM's life, so a piece stays valid even if the guest tears the GPADL
///   down while a frame is in flight (it then only corrupts its own memory);
/// - every access below is bounded by `count` and by each piece's length, so nothing outside the
///   ranges the guest described is read or written. The guest may change the bytes at any time:
///   callers copy what they validate (headers) before trusting it.
struct GuestBufferMap: @unchecked Sendable {
    struct Piece: @unchecked Sendable {
        var base: UnsafeMutableRawPointer
        var count: Int
        /// Offset of the piece's first byte in the whole buffer.
        var start: Int
    }

    private(set) var pieces: [Piece] = []
    private(set) var count = 0

    init() {}

    init(pieces: [Piece]) {
        for piece in pieces { append(piece.base, count: piece.count) }
    }

    mutating func removeAll() {
        pieces.removeAll(keepingCapacity: true)
        count = 0
    }

    mutating func append(_ base: UnsafeMutableRawPointer, count length: Int) {
        guard length > 0 else { return }
        pieces.append(Piece(base: base, count: length, start: count))
        count += length
    }

    /// Appends the pieces of `other` covering [offset, offset + length) (clamped to it).
    mutating func append(_ other: GuestBufferMap, offset: Int, length: Int) {
        other.forEachPiece(offset: offset, length: length) { base, n in append(base, count: n) }
    }

    /// Maps `segments` (guest-physical ranges) through `mapper`; nil when one is not guest RAM or
    /// the total exceeds `limit`.
    static func map(_ segments: [(gpa: UInt64, length: UInt64)], limit: Int,
                    mapper: (UInt64, UInt64) -> UnsafeMutableRawBufferPointer?) -> GuestBufferMap? {
        var map = GuestBufferMap()
        for segment in segments {
            guard segment.length <= UInt64(limit - map.count) else { return nil }
            guard let mapped = mapper(segment.gpa, segment.length), let base = mapped.baseAddress,
                  mapped.count >= Int(segment.length) else { return nil }
            map.append(base, count: Int(segment.length))
        }
        return map
    }

    /// Index of the piece holding byte `offset` (binary search; `offset` < count).
    private func pieceIndex(_ offset: Int) -> Int {
        var lo = 0, hi = pieces.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if pieces[mid].start <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Calls `body` with each host run covering [offset, offset + length), clamped to the buffer.
    @inline(__always)
    func forEachPiece(offset: Int, length: Int, _ body: (UnsafeMutableRawPointer, Int) -> Void) {
        guard offset >= 0, offset < count, length > 0 else { return }
        var left = min(length, count - offset)
        var i = pieceIndex(offset)
        var skip = offset - pieces[i].start
        while left > 0 && i < pieces.count {
            let piece = pieces[i]
            let take = min(piece.count - skip, left)
            body(piece.base + skip, take)
            left -= take
            skip = 0
            i += 1
        }
    }

    /// Copies [offset, offset + destination.count) out; false when the range leaves the buffer.
    @discardableResult
    func copyOut(offset: Int, into destination: UnsafeMutableRawBufferPointer) -> Bool {
        guard offset >= 0, destination.count <= count - min(offset, count), let to = destination.baseAddress else {
            return destination.isEmpty
        }
        var done = 0
        forEachPiece(offset: offset, length: destination.count) { base, n in
            memcpy(to + done, base, n)
            done += n
        }
        return done == destination.count
    }

    /// Copies `source` in at `offset`; false when it does not fit.
    @discardableResult
    func copyIn(offset: Int, from source: UnsafeRawBufferPointer) -> Bool {
        guard offset >= 0, source.count <= count - min(offset, count), let from = source.baseAddress else {
            return source.isEmpty
        }
        var done = 0
        forEachPiece(offset: offset, length: source.count) { base, n in
            memcpy(base, from + done, n)
            done += n
        }
        return done == source.count
    }

    /// Moves [offset, offset + length) to `offset + by` (by > 0, small: a VLAN tag's 4 bytes),
    /// through a stack copy; false when either range leaves the buffer.
    func shiftForward(offset: Int, length: Int, by: Int) -> Bool {
        guard length <= 64, by > 0, offset >= 0, offset + by + length <= count else { return false }
        return withUnsafeTemporaryAllocation(byteCount: length, alignment: 1) { scratch in
            copyOut(offset: offset, into: scratch) && copyIn(offset: offset + by, from: UnsafeRawBufferPointer(scratch))
        }
    }

    /// The ones'-complement sum (RFC 1071, not folded) of [offset, offset + length), for
    /// completing a partial checksum in a frame the host left unsummed.
    func onesComplementSum(offset: Int, length: Int) -> UInt64 {
        var sum: UInt64 = 0
        var odd = false
        forEachPiece(offset: offset, length: length) { base, n in
            let bytes = UnsafeRawBufferPointer(start: base, count: n)
            for byte in bytes {
                sum &+= odd ? UInt64(byte) : UInt64(byte) << 8
                odd.toggle()
            }
        }
        return sum
    }
}

/// A fixed-capacity iovec array for readv/writev, allocated once per path and reused for every
/// frame (no per-frame allocation).
final class IOVecList: @unchecked Sendable {
    let capacity: Int
    private(set) var count = 0
    private(set) var totalBytes = 0
    let vectors: UnsafeMutablePointer<iovec>

    init(capacity: Int) {
        self.capacity = capacity
        vectors = .allocate(capacity: capacity)
    }

    deinit { vectors.deallocate() }

    func removeAll() {
        count = 0
        totalBytes = 0
    }

    /// False when full (the caller drops the frame).
    @discardableResult
    func append(_ base: UnsafeMutableRawPointer, _ length: Int) -> Bool {
        guard length > 0 else { return true }
        guard count < capacity else { return false }
        vectors[count] = iovec(iov_base: base, iov_len: length)
        count += 1
        totalBytes += length
        return true
    }

    /// Appends the runs of `map` covering [offset, offset + length); false when they do not all fit.
    func append(_ map: GuestBufferMap, offset: Int, length: Int) -> Bool {
        var ok = true
        map.forEachPiece(offset: offset, length: length) { base, n in ok = ok && append(base, n) }
        return ok
    }

    func readv(_ fd: Int32) -> Int { Glibc.readv(fd, vectors, Int32(count)) }
    func writev(_ fd: Int32) -> Int { Glibc.writev(fd, vectors, Int32(count)) }
}

/// A fixed scratch buffer owned by one path (headers copied out of guest memory, RNDIS prefixes
/// built before they are copied in), allocated once.
final class Scratch: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let bytes: UnsafeMutableRawBufferPointer

    init(_ size: Int) {
        base = .allocate(byteCount: max(size, 1), alignment: 8)
        bytes = UnsafeMutableRawBufferPointer(start: base, count: max(size, 1))
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { base.deallocate() }

    var raw: UnsafeRawBufferPointer { UnsafeRawBufferPointer(bytes) }
    subscript(i: Int) -> UInt8 {
        get { bytes[i] }
        set { bytes[i] = newValue }
    }

    func u16be(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
    func setU16be(_ value: UInt16, at: Int) {
        bytes[at] = UInt8(value >> 8)
        bytes[at + 1] = UInt8(truncatingIfNeeded: value)
    }
    func u32le(_ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
    func setU32le(_ value: UInt32, at: Int) {
        for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
    func setU16le(_ value: UInt16, at: Int) {
        bytes[at] = UInt8(truncatingIfNeeded: value)
        bytes[at + 1] = UInt8(value >> 8)
    }
    func zero(_ range: Range<Int>) {
        for i in range { bytes[i] = 0 }
    }
}
