#if canImport(Glibc)
import Glibc
#endif

/// Opening a host file that must be a regular one (a state file such as the CMOS NVRAM image):
/// non-blocking, so a FIFO without a peer or a device that waits on open is refused at once
/// instead of stalling the VM, then checked with fstat. The host core does the same for config
/// and boot files (`openRegularFile`); plugins cannot link the core, so the SDK has its own.
public enum HostFile {
    public enum OpenError: Error, CustomStringConvertible, Sendable, Equatable {
        case failed(errno: Int32)
        case notRegular(type: String)

        public var description: String {
            switch self {
            case .failed(let code): errnoText(code)
            case .notRegular(let type): "it is \(type), not a regular file"
            }
        }
    }

    /// A descriptor for `path` opened with `flags` (plus O_NONBLOCK and O_CLOEXEC), or the reason
    /// it is not a regular file. O_NONBLOCK is cleared again: it means nothing for regular files.
    public static func openRegular(_ path: String, flags: Int32, mode: mode_t = 0o644) throws(OpenError) -> Int32 {
        let fd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, mode)
        guard fd >= 0 else { throw .failed(errno: errno) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            _ = close(fd)
            throw .failed(errno: code)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            _ = close(fd)
            throw .notRegular(type: typeName(info.st_mode))
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    /// "a directory", "a FIFO", ... for messages about a file of the wrong kind.
    public static func typeName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "not a regular file"
        }
    }
}
