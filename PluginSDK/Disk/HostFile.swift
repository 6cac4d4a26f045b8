import Synchronization
import VeneerDiskSupport
#if canImport(Glibc)
import Glibc
#endif

// The only place the formats touch file descriptors and raw memory. Invariants: every buffer
// passed to pread/pwrite is a Swift array of exactly the length asked for, alive for the call;
// short transfers are retried until done, EOF on read yields zeros (the file may be shorter
// than a structure that was never written), and every failure becomes a DiskError naming the
// file, the operation and the offset.

/// An open file of an image, owned by it (closed by `close`).
struct HostFile: Sendable {
    let fd: Int32
    let path: String
    /// Tests only: simulates the process dying after a number of writes (nil in real use).
    var crashPoint: CrashPoint?

    static func open(_ path: String, writable: Bool, create: Bool = false) throws(DiskError) -> HostFile {
        var flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC
        if create { flags |= O_CREAT | O_EXCL }
        let fd = Glibc.open(path, flags, 0o644)
        guard fd >= 0 else {
            let e = errno
            throw DiskError(.io(errno: e), path: path, "cannot \(create ? "create" : "open") (\(String(cString: strerror(e))))")
        }
        return HostFile(fd: fd, path: path, crashPoint: nil)
    }

    func close() { _ = Glibc.close(fd) }

    func unlock() { _ = flock(fd, LOCK_UN) }

    /// An advisory lock for the image's lifetime: exclusive for a writable open, shared for a
    /// read-only one (several children may share a parent), so two VMs never write one disk.
    func lock(exclusive: Bool) throws(DiskError) {
        while flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            if e == EWOULDBLOCK {
                throw DiskError(.io(errno: e), path: path, exclusive ? "in use by another process (it holds a lock on the file)"
                                                            : "being written by another process (it holds an exclusive lock)")
            }
            throw error("flock", e)
        }
    }

    func error(_ what: String, _ e: Int32 = errno) -> DiskError {
        DiskError(e == ENOSPC || e == EDQUOT ? .noSpace : .io(errno: e), path: path, "\(what): \(String(cString: strerror(e)))")
    }

    /// Reads `count` bytes at `offset`; bytes past the end of the file read as zero.
    func read(at offset: UInt64, count: Int) throws(DiskError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        var failure: Int32 = 0
        buffer.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            while done < count {
                let n = pread(fd, base + done, count - done, off_t(offset) + off_t(done))
                if n < 0 { if errno == EINTR { continue }; failure = errno; return }
                if n == 0 { return }
                done += n
            }
        }
        if failure != 0 { throw error("read of \(count) bytes at offset \(offset)", failure) }
        return buffer
    }

    func write(_ bytes: [UInt8], at offset: UInt64) throws(DiskError) {
        try crashPoint?.step(path)
        var done = 0
        var failure: Int32 = 0
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            while done < bytes.count {
                let n = pwrite(fd, base + done, bytes.count - done, off_t(offset) + off_t(done))
                if n < 0 { if errno == EINTR { continue }; failure = errno; return }
                if n == 0 { failure = EIO; return }
                done += n
            }
        }
        if failure != 0 { throw error("write of \(bytes.count) bytes at offset \(offset)", failure) }
    }

    func sync() throws(DiskError) {
        try crashPoint?.step(path)
        while fdatasync(fd) != 0 {
            if errno != EINTR { throw error("fdatasync") }
        }
    }

    /// Size in bytes: st_size for a regular file, the device's size for a block device.
    func size() throws(DiskError) -> (bytes: UInt64, isBlockDevice: Bool) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw error("fstat") }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return (UInt64(st.st_size), false)
        case S_IFBLK:
            // lseek to the end reports a block device's size (what BLKGETSIZE64 returns).
            let end = lseek(fd, 0, SEEK_END)
            guard end >= 0 else { throw error("seek to the end of the block device") }
            return (UInt64(end), true)
        default:
            throw DiskError(.unsupported, path: path, "not a regular file or block device")
        }
    }

    func setSize(_ bytes: UInt64) throws(DiskError) {
        try crashPoint?.step(path)
        while ftruncate(fd, off_t(bytes)) != 0 {
            if errno != EINTR { throw error("resize to \(bytes) bytes") }
        }
    }

    /// fallocate(PUNCH_HOLE | KEEP_SIZE): the range reads as zeros and its space is freed.
    func punchHole(at offset: UInt64, length: UInt64) -> Int32 {
        veneer_disk_punch_hole(fd, Int64(offset), Int64(length))
    }

    /// The block device's major:minor, for its sysfs queue attributes.
    func deviceNumbers() -> (major: UInt32, minor: UInt32)? {
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFBLK else { return nil }
        let dev = UInt64(st.st_rdev)
        let major = UInt32(((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF))
        let minor = UInt32((dev & 0xFF) | ((dev >> 12) & ~0xFF))
        return (major, minor)
    }
}

/// A small text file's contents (sysfs attributes), nil if unreadable.
func readSmallTextFile(_ path: String) -> String? {
    guard let file = try? HostFile.open(path, writable: false) else { return nil }
    defer { file.close() }
    guard let bytes = try? file.read(at: 0, count: 64) else { return nil }
    return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: " \n")
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}

/// Removes a file this code created and could not finish.
func unlinkFile(_ path: String) -> Bool { unlink(path) == 0 }

/// The canonical absolute form of an existing path, nil if it cannot be resolved.
func canonicalPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// For crash tests: lets `remaining` modifying calls (write, sync, resize) through, then fails
/// every later one, as if the process had been killed there. Whatever was written before stays
/// (a killed process's writes are in the page cache), nothing after reaches the file.
final class CrashPoint: Sendable {
    private let remaining: Atomic<Int>
    init(after steps: Int) { remaining = Atomic(steps) }
    var crashed: Bool { remaining.load(ordering: .relaxed) < 0 }
    func step(_ path: String) throws(DiskError) {
        if remaining.subtract(1, ordering: .relaxed).newValue < 0 {
            throw DiskError(.io(errno: EIO), path: path, "simulated crash")
        }
    }
}
