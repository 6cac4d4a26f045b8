import Glibc

/// A host file opened read-only for one copy. The descriptor is owned by this object alone and
/// closed when it goes away; reads are positional (pread), so no shared offset exists.
final class HostFile: Sendable {
    let fd: Int32
    let size: UInt64
    let path: String

    struct OpenError: Error, CustomStringConvertible {
        var description: String
    }

    init(path: String) throws(OpenError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw OpenError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw OpenError(description: "\(path) is not a regular file")
        }
        self.fd = fd
        self.size = UInt64(max(info.st_size, 0))
        self.path = path
    }

    deinit { close(fd) }

    /// Up to `count` bytes at `offset` (fewer only at the end of the file).
    func read(at offset: UInt64, count: Int) throws(OpenError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            // Invariant: done < count == bytes.count, so the write stays inside `bytes`.
            let n = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return pread(fd, base + done, count - done, off_t(offset) + off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw OpenError(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            done += n
        }
        return Array(bytes.prefix(done))
    }
}
