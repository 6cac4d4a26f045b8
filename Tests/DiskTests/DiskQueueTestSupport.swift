import Foundation
import Glibc
import Synchronization
import Testing
@testable import VeneerDisk

// Test-only disk images for the engine (the real formats are tested on their own): an identity
// mapping over one file, and a two-file chain with unallocated (zero) blocks; both record what the
// engine asked of them. Plus temp directories, aligned memory and a bounded wait for completions.

/// What an image saw from the engine.
struct ImageLog: Sendable {
    var completedWrites: [(offset: UInt64, length: UInt64, durable: Bool)] = []
    var flushes = 0
    var discards: [(offset: UInt64, length: UInt64)] = []
}

/// A temporary directory, removed with everything in it by `remove`.
struct ScratchDirectory {
    let path: String

    init() {
        var template = Array("/tmp/veneer-diskqueue-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = made.map { String(cString: $0) } ?? "/tmp/veneer-diskqueue-fallback-\(getpid())"
        if made == nil { mkdir(path, 0o700) }
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Creates `path` of `size` bytes, every byte `fill` (or sparse when `fill` is nil); returns an O_RDWR fd.
func makeTestFile(_ path: String, size: UInt64, fill: UInt8? = nil) -> Int32 {
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    precondition(fd >= 0, "cannot create \(path): \(errno)")
    precondition(ftruncate(fd, off_t(size)) == 0)
    if let fill {
        let chunk = [UInt8](repeating: fill, count: 1 << 20)
        var at: UInt64 = 0
        while at < size {
            let count = Int(min(UInt64(chunk.count), size - at))
            precondition(pwrite(fd, chunk, count, off_t(at)) == count)
            at += UInt64(count)
        }
    }
    return fd
}

/// Reads `count` bytes of `fd` at `offset` with pread (the page cache: what any reader sees).
func preadBytes(_ fd: Int32, offset: UInt64, count: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
    return got == count ? bytes : []
}

/// The bytes the tests write at absolute disk offset `offset`: different at every offset and generation.
func testPatternByte(_ offset: UInt64, generation: UInt8) -> UInt8 {
    UInt8(truncatingIfNeeded: (offset &* 2_654_435_761) >> 11) ^ generation &+ UInt8(truncatingIfNeeded: offset >> 9)
}

func testPattern(offset: UInt64, count: Int, generation: UInt8) -> [UInt8] {
    (0..<count).map { testPatternByte(offset + UInt64($0), generation: generation) }
}

/// Page-aligned memory that outlives the requests using it.
final class TestMemory {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(_ count: Int) {
        var memory: UnsafeMutableRawPointer? = nil
        precondition(posix_memalign(&memory, 4096, max(count, 1)) == 0)
        base = memory!
        self.count = count
        memset(base, 0x5A, count)
    }

    deinit { free(base) }

    func buffer(at offset: Int = 0, count: Int) -> DiskBuffer {
        precondition(offset + count <= self.count)
        return DiskBuffer(base: base + offset, count: count)
    }

    func bytes(at offset: Int = 0, count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: base + offset, count: count))
    }

    func store(_ bytes: [UInt8], at offset: Int = 0) {
        precondition(offset + bytes.count <= count)
        bytes.withUnsafeBytes { (base + offset).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }
}

/// Every completion of what is outstanding, plus `first` (what submit returned). Waits on the
/// eventfd with poll; a minute without a completion is recorded as a hang, not waited out.
func drain(_ queue: DiskQueue, _ first: [DiskCompletion] = []) -> [DiskCompletion] {
    var completions = first
    while queue.outstanding > 0 {
        var watch = pollfd(fd: queue.eventFD, events: Int16(POLLIN), revents: 0)
        let ready = poll(&watch, 1, 60_000)
        if ready == 0 {
            Issue.record("no completion for a minute with \(queue.outstanding) requests outstanding")
            break
        }
        completions += queue.reap()
    }
    return completions
}

/// Identity mapping: disk byte n is byte n of one file.
final class IdentityTestImage: DiskImage {
    let path: String
    let geometry: DiskGeometry
    let isReadOnly: Bool
    let supportsDiscard = true
    let fd: Int32
    let log = Mutex(ImageLog())

    init(path: String, size: UInt64, fill: UInt8? = nil, readOnly: Bool = false, logicalBlockSize: UInt32 = 512) {
        self.path = path
        fd = makeTestFile(path, size: size, fill: fill)
        geometry = DiskGeometry(virtualSize: size, logicalBlockSize: logicalBlockSize, physicalBlockSize: 4096)
        isReadOnly = readOnly
    }

    /// A disk of `size` bytes over an existing, possibly shorter, file.
    init(path: String, fd: Int32, size: UInt64) {
        self.path = path
        self.fd = fd
        geometry = DiskGeometry(virtualSize: size, logicalBlockSize: 512, physicalBlockSize: 4096)
        isReadOnly = false
    }

    deinit { close(fd) }

    var dataFiles: [DiskDataFile] { [DiskDataFile(fd: fd, path: path, writable: !isReadOnly)] }

    func mapForRead(offset: UInt64, length: UInt64) throws(DiskError) -> [DiskExtent] {
        [.file(fd: fd, offset: offset, length: length)]
    }

    func mapForWrite(offset: UInt64, length: UInt64) throws(DiskError) -> DiskWriteMapping {
        DiskWriteMapping(extents: [.file(fd: fd, offset: offset, length: length)], pending: [offset, length])
    }

    func completeWrite(_ mapping: DiskWriteMapping, durable: Bool) throws(DiskError) {
        guard let range = mapping.pending as? [UInt64], range.count == 2 else { return }
        log.withLock { $0.completedWrites.append((range[0], range[1], durable)) }
    }

    func discard(offset: UInt64, length: UInt64) throws(DiskError) {
        // Reads as zeros afterwards, as a hole punched in a raw file would.
        let zeros = [UInt8](repeating: 0, count: Int(length))
        guard pwrite(fd, zeros, zeros.count, off_t(offset)) == zeros.count else {
            throw DiskError(.io(errno: errno), path: path, "discard")
        }
        log.withLock { $0.discards.append((offset, length)) }
    }

    func flush() throws(DiskError) {
        log.withLock { $0.flushes += 1 }
    }
}

/// A differencing disk in miniature: 64 KiB blocks live in the child file once written (published
/// by completeWrite), else in the read-only parent if it has them, else read as zeros. Both files
/// map disk offset n to file offset n, and the child starts full of 0xEE so a block read from the
/// wrong place shows.
final class ChainTestImage: DiskImage {
    static let blockSize: UInt64 = 64 * 1024
    let path: String
    let geometry: DiskGeometry
    let isReadOnly = false
    let supportsDiscard = false
    let parentFD: Int32
    let childFD: Int32
    let parentPath: String
    let parentBlocks: Set<UInt64>
    let childBlocks = Mutex(Set<UInt64>())
    let log = Mutex(ImageLog())

    /// The parent holds `testPattern(generation: 7)` in `parentBlocks`, zeros elsewhere.
    init(directory: ScratchDirectory, size: UInt64, parentBlocks: Set<UInt64>) {
        parentPath = directory.file("parent.img")
        path = directory.file("child.img")
        let writer = makeTestFile(parentPath, size: size)
        for block in parentBlocks {
            let bytes = testPattern(offset: block * Self.blockSize, count: Int(Self.blockSize), generation: 7)
            precondition(pwrite(writer, bytes, bytes.count, off_t(block * Self.blockSize)) == bytes.count)
        }
        close(writer)
        parentFD = open(parentPath, O_RDONLY | O_CLOEXEC)
        childFD = makeTestFile(path, size: size, fill: 0xEE)
        self.parentBlocks = parentBlocks
        geometry = DiskGeometry(virtualSize: size, logicalBlockSize: 512, physicalBlockSize: 4096)
    }

    deinit {
        close(parentFD)
        close(childFD)
    }

    var dataFiles: [DiskDataFile] {
        [DiskDataFile(fd: childFD, path: path, writable: true), DiskDataFile(fd: parentFD, path: parentPath, writable: false)]
    }

    /// [offset, offset + length) cut at block boundaries: (block, offset, length) each.
    private func pieces(_ offset: UInt64, _ length: UInt64) -> [(block: UInt64, offset: UInt64, length: UInt64)] {
        var result: [(UInt64, UInt64, UInt64)] = []
        var at = offset
        while at < offset + length {
            let block = at / Self.blockSize
            let end = min((block + 1) * Self.blockSize, offset + length)
            result.append((block, at, end - at))
            at = end
        }
        return result
    }

    func mapForRead(offset: UInt64, length: UInt64) throws(DiskError) -> [DiskExtent] {
        let written = childBlocks.withLock { $0 }
        return pieces(offset, length).map { piece in
            if written.contains(piece.block) { return .file(fd: childFD, offset: piece.offset, length: piece.length) }
            if parentBlocks.contains(piece.block) { return .file(fd: parentFD, offset: piece.offset, length: piece.length) }
            return .zero(length: piece.length)
        }
    }

    func mapForWrite(offset: UInt64, length: UInt64) throws(DiskError) -> DiskWriteMapping {
        // Whole-block copy-up is the format's business; here writes cover whole blocks (asserted by tests).
        let parts = pieces(offset, length)
        return DiskWriteMapping(extents: parts.map { .file(fd: childFD, offset: $0.offset, length: $0.length) },
                                pending: parts.map(\.block))
    }

    func completeWrite(_ mapping: DiskWriteMapping, durable: Bool) throws(DiskError) {
        guard let blocks = mapping.pending as? [UInt64] else { return }
        childBlocks.withLock { $0.formUnion(blocks) }
        let first = blocks.first ?? 0
        log.withLock { $0.completedWrites.append((first * Self.blockSize, UInt64(blocks.count) * Self.blockSize, durable)) }
    }

    func discard(offset: UInt64, length: UInt64) throws(DiskError) {}

    func flush() throws(DiskError) {
        log.withLock { $0.flushes += 1 }
    }
}

extension DiskCompletion {
    var bytes: UInt64? { try? result.get() }
    var error: DiskError? {
        if case .failure(let error) = result { return error }
        return nil
    }
}

/// nil when the bytes are equal, else where they first differ: a short message, where comparing
/// the arrays themselves would print (and diff) megabytes.
func mismatch(_ got: [UInt8], _ want: [UInt8]) -> String? {
    guard got.count == want.count else { return "\(got.count) bytes where \(want.count) were expected" }
    guard let index = got.indices.first(where: { got[$0] != want[$0] }) else { return nil }
    return "byte \(index) is \(got[index]), expected \(want[index])"
}
