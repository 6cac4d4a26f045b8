#if canImport(Glibc)
import Glibc
#endif

/// veneerd's listening socket file: a stale one (no process accepts on it) is replaced, a live
/// one means another veneerd serves this state directory and is refused, anything else at the
/// path is left alone. After the bind the file gets its mode (0600, or 0660 for a group).
public enum SocketFile {
    public struct Error: Swift.Error, CustomStringConvertible {
        public var description: String
    }

    /// Longest path a sockaddr_un holds (108 bytes with the terminating NUL).
    static let maxPathBytes = 107

    /// Checks `path` before the bind: removes a stale socket, throws for a live one or a non-socket.
    public static func prepare(_ path: String) throws(SocketFile.Error) {
        guard path.utf8.count <= maxPathBytes else {
            throw Error(description: "socket path \(path) is longer than the \(maxPathBytes) bytes a UNIX socket address holds")
        }
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw Error(description: "cannot inspect \(path): \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw Error(description: "\(path) exists and is not a socket; not replacing it")
        }
        if isLive(path) {
            throw Error(description: "another veneerd is serving \(path); stop it first or choose another --socket")
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw Error(description: "cannot remove the stale socket \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Whether something accepts connections on the socket at `path`.
    static func isLive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        // Invariant: `path` fits sun_path with its NUL (checked in `prepare`); the copy is bounded by it.
        let copied = withUnsafeMutableBytes(of: &address.sun_path) { raw -> Bool in
            let bytes = Array(path.utf8)
            guard bytes.count < raw.count else { return false }
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
            return true
        }
        guard copied else { return false }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0
    }

    /// Gives the bound socket its mode: 0600, or 0660 owned by `group`.
    public static func secure(_ path: String, group: gid_t?) throws(SocketFile.Error) {
        if let group, chown(path, uid_t.max, group) != 0 {
            throw Error(description: "cannot give \(path) to group \(group): \(String(cString: strerror(errno)))")
        }
        let mode: mode_t = group == nil ? 0o600 : 0o660
        guard chmod(path, mode) == 0 else {
            throw Error(description: "cannot set mode \(String(mode, radix: 8)) on \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The gid of group `name`.
    public static func groupID(named name: String) throws(SocketFile.Error) -> gid_t {
        guard let entry = getgrnam(name) else {
            throw Error(description: "no group named '\(name)'")
        }
        return entry.pointee.gr_gid
    }
}
