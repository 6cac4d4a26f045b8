import VeneerPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// Where the UART's serial line leads on the host side: file descriptors chosen by the
/// `output` and `input` parameters. Only fds this type opened itself are closed by it.
struct Endpoint {
    let fd: Int32
    let owned: Bool

    func close() {
        if owned { _ = Glibc.close(fd) }
    }

    /// `stdout`, `stderr`, `none` (nil) or a file path, created or truncated.
    static func output(_ spec: String) throws(PluginError) -> Endpoint? {
        switch spec {
        case "none": return nil
        case "stdout": return try standard(1, "output", spec)
        case "stderr": return try standard(2, "output", spec)
        case "": throw PluginError("output: empty; use stdout, stderr, none or a file path")
        default:
            // O_NONBLOCK only for the open: a FIFO without a reader fails at once (ENXIO) instead
            // of hanging VM creation; writes then block as on a slow line.
            let fd = open(spec, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0o644)
            guard fd >= 0 else {
                let code = errno
                let hint = code == ENXIO ? " (a FIFO needs its reader running first)" : ""
                throw PluginError("output: cannot create '\(spec)': \(errnoText(code))\(hint)")
            }
            var info = stat()
            if fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFBLK {
                // Console bytes written over a disk would destroy it.
                _ = Glibc.close(fd)
                throw PluginError("output: '\(spec)' is a block device, not a file, FIFO or terminal")
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            return Endpoint(fd: fd, owned: true)
        }
    }

    /// `stdin`, `none` (nil) or a path to a file or FIFO, opened non-blocking so that opening a
    /// FIFO does not wait for a writer and a read never stalls the event thread.
    static func input(_ spec: String) throws(PluginError) -> Endpoint? {
        switch spec {
        case "none": return nil
        case "stdin": return try standard(0, "input", spec)
        case "": throw PluginError("input: empty; use stdin, none or a file or FIFO path")
        default:
            let fd = open(spec, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { throw PluginError("input: cannot open '\(spec)': \(errnoText())") }
            var info = stat()
            if fstat(fd, &info) == 0, [S_IFDIR, S_IFBLK, S_IFSOCK].contains(info.st_mode & S_IFMT) {
                _ = Glibc.close(fd)
                throw PluginError("input: '\(spec)' is \(HostFile.typeName(info.st_mode)), not a file, FIFO or terminal")
            }
            return Endpoint(fd: fd, owned: true)
        }
    }

    /// One of the process's standard streams: never closed, and it must be open.
    private static func standard(_ fd: Int32, _ parameter: String, _ spec: String) throws(PluginError) -> Endpoint {
        guard fcntl(fd, F_GETFD) != -1 else { throw PluginError("\(parameter): \(spec) is not open in this process") }
        return Endpoint(fd: fd, owned: false)
    }
}

