#if canImport(Glibc)
import Glibc
#endif

/// The UNIX-socket calls the worker's control side makes: listen on a path with mode 0600,
/// accept without blocking, and learn a peer's uid.
///
/// Unsafe-pointer invariants: `sockaddr_un` is filled by copying at most `sun_path`'s size minus
/// one bytes (the path is checked to fit first, so it stays NUL-terminated), and every pointer
/// handed to the kernel points at a local of exactly the length passed with it.
public enum ControlSocket {
    /// Creates, binds and listens on a stream socket at `path` (an old socket file there is
    /// replaced), readable and writable by the owner only.
    public static func listen(path: String) throws(SystemError) -> OwnedFD {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw SystemError("control socket path '\(path)' is longer than \(capacity - 1) bytes", errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let raw = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard raw >= 0 else { throw SystemError("socket(AF_UNIX)") }
        let fd = OwnedFD(raw)
        if unlink(path) != 0, errno != ENOENT { throw SystemError("remove the old socket '\(path)'") }
        // The umask makes the file 0600 from the moment it exists: no window with wider access.
        let previous = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(raw, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let bindErrno = errno
        umask(previous)
        guard bound == 0 else { throw SystemError("bind '\(path)'", errno: bindErrno) }
        guard chmod(path, 0o600) == 0 else { throw SystemError("chmod 0600 '\(path)'") }
        guard Glibc.listen(raw, 64) == 0 else { throw SystemError("listen '\(path)'") }
        return fd
    }

    /// The next pending connection (non-blocking, close-on-exec), nil when there is none.
    public static func accept(_ listener: Int32) -> OwnedFD? {
        while true {
            // accept4 needs _GNU_SOURCE, which Swift's Glibc module does not define: set the flags after.
            let fd = Glibc.accept(listener, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                return OwnedFD(fd)
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            return nil
        }
    }

    /// The uid of the process at the other end (SO_PEERCRED), nil if the kernel cannot say.
    public static func peerUID(_ fd: Int32) -> uid_t? {
        var credentials = PeerCredentials()
        var length = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0,
              length == socklen_t(MemoryLayout<PeerCredentials>.size) else { return nil }
        return credentials.uid
    }

    /// Linux's `struct ucred` (pid_t, uid_t, gid_t: 12 bytes), which Swift's Glibc module only
    /// declares under _GNU_SOURCE. getsockopt checks the length it fills against this size.
    struct PeerCredentials {
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
    }
}
