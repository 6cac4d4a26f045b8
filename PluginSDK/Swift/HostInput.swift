#if canImport(Glibc)
import Glibc
#endif

/// A host file or FIFO the device reads bytes from, non-blocking so that a read never stalls the
/// event thread. A FIFO (or a pipe named through /proc/self/fd) is reopened read-write: holding a
/// writer itself, the device never sees end-of-file there, so writers may come and go
/// (`printf ... > fifo` any number of times). A regular file is read once, to its end.
public struct HostInput: Sendable {
    public let fd: Int32

    /// `none` (nil) or a path; `parameter` names the setting in error messages.
    public static func open(_ spec: String, parameter: String) throws(PluginError) -> HostInput? {
        switch spec {
        case "none": return nil
        case "": throw PluginError("\(parameter): empty; use none or a path to a file or FIFO")
        default: break
        }
        let fd = Glibc.open(spec, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw PluginError("\(parameter): cannot open '\(spec)': \(errnoText())") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = errnoText()
            _ = Glibc.close(fd)
            throw PluginError("\(parameter): cannot stat '\(spec)': \(reason)")
        }
        switch info.st_mode & S_IFMT {
        case S_IFDIR, S_IFBLK, S_IFSOCK:
            // A directory cannot be read; a disk or socket is never meant as a byte stream here.
            _ = Glibc.close(fd)
            throw PluginError("\(parameter): '\(spec)' is \(HostFile.typeName(info.st_mode)), not a file, FIFO or terminal")
        case S_IFIFO:
            let readWrite = Glibc.open("/proc/self/fd/\(fd)", O_RDWR | O_NONBLOCK | O_CLOEXEC)
            let reason = errnoText()
            _ = Glibc.close(fd)
            guard readWrite >= 0 else { throw PluginError("\(parameter): cannot reopen FIFO '\(spec)' read-write: \(reason)") }
            return HostInput(fd: readWrite)
        default:
            return HostInput(fd: fd)
        }
    }

    public func close() { _ = Glibc.close(fd) }
}

public func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
