#if canImport(Glibc)
import Glibc
#endif

/// Why a file named by a config (the config itself, a kernel, an initrd, a module, a flat image)
/// could not be read. Each case reads as one line naming the path.
public enum FileReadError: Error, CustomStringConvertible, Sendable, Equatable {
    case cannotOpen(path: String, errno: Int32)
    /// A FIFO, a device, a directory or a socket: never read, since reading could block forever
    /// or never end.
    case notRegular(path: String, type: String)
    case tooLarge(path: String, size: Int64, limit: Int)
    case readFailed(path: String, errno: Int32, after: Int)

    public var path: String {
        switch self {
        case .cannotOpen(let p, _), .notRegular(let p, _), .tooLarge(let p, _, _), .readFailed(let p, _, _): p
        }
    }

    public var description: String { "\(path): \(reason)" }

    /// What is wrong, without the path.
    public var reason: String {
        switch self {
        case .cannotOpen(_, let code): "cannot open: \(String(cString: strerror(code)))"
        case .notRegular(_, let type): "it is \(type), not a regular file"
        case .tooLarge(_, let size, let limit): "it has \(size) bytes, more than \(limit)"
        case .readFailed(_, let code, let after):
            "read failed after \(after) bytes: \(code == 0 ? "unexpected end of file" : String(cString: strerror(code)))"
        }
    }
}

/// Opens `path` for reading only if it is a regular file (symlinks to one are fine). The open is
/// non-blocking, so a FIFO without a writer (or a device that waits on open) is refused at once
/// instead of hanging the VMM; O_NONBLOCK has no effect on reads of a regular file.
public func openRegularFile(_ path: String) throws(FileReadError) -> OwnedFD {
    let raw = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
    guard raw >= 0 else { throw .cannotOpen(path: path, errno: errno) }
    let fd = OwnedFD(raw)
    var info = stat()
    guard fstat(raw, &info) == 0 else { throw .cannotOpen(path: path, errno: errno) }
    guard info.st_mode & S_IFMT == S_IFREG else { throw .notRegular(path: path, type: fileTypeName(info.st_mode)) }
    return fd
}

/// "a directory", "a FIFO", ... for messages about a file that is not regular.
func fileTypeName(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: "a directory"
    case S_IFIFO: "a FIFO"
    case S_IFCHR: "a character device"
    case S_IFBLK: "a block device"
    case S_IFSOCK: "a socket"
    case S_IFLNK: "a symbolic link"
    default: "not a regular file"
    }
}

/// Reads a whole regular file, refusing anything larger than `limit` before reading it.
///
/// Unsafe-pointer invariant: each `read` gets a pointer `done` bytes into a buffer of `total`
/// bytes and a length of `total - done`; `done` only grows by what the kernel reports.
public func readWholeFile(_ path: String, limit: Int) throws(FileReadError) -> [UInt8] {
    let fd = try openRegularFile(path)
    var info = stat()
    guard fstat(fd.raw, &info) == 0 else { throw .cannotOpen(path: path, errno: errno) }
    guard info.st_size <= limit else { throw .tooLarge(path: path, size: Int64(info.st_size), limit: limit) }
    var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
    var done = 0
    while done < bytes.count {
        let total = bytes.count
        let n = bytes.withUnsafeMutableBytes { $0.baseAddress.map { read(fd.raw, $0 + done, total - done) } ?? 0 }
        if n < 0, errno == EINTR { continue }
        guard n > 0 else { throw .readFailed(path: path, errno: n < 0 ? errno : 0, after: done) }
        done += n
    }
    return bytes
}
