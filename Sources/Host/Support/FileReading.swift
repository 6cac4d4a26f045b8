#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole regular file, refusing anything larger than `limit` before reading it.
public func readWholeFile(_ path: String, limit: Int) throws(SystemError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError("open \(path)") }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw SystemError("stat \(path)") }
    guard info.st_mode & S_IFMT == S_IFREG else { throw SystemError("\(path) is not a regular file", errno: EINVAL) }
    guard info.st_size <= limit else { throw SystemError("\(path) has \(info.st_size) bytes, more than \(limit)", errno: EFBIG) }
    var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
    var done = 0
    while done < bytes.count {
        let total = bytes.count
        let n = bytes.withUnsafeMutableBytes { $0.baseAddress.map { read(fd, $0 + done, total - done) } ?? 0 }
        if n < 0, errno == EINTR { continue }
        guard n > 0 else { throw SystemError("read \(path)") }
        done += n
    }
    return bytes
}
