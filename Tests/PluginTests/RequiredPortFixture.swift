#if canImport(Glibc)
import Glibc
#endif

/// Parameters a plugin cannot be created without, for the suites that create every plugin with
/// schema defaults: netvsp needs a port, here one end of a SOCK_SEQPACKET pair (the packet fd
/// shape its `fds` parameter takes). Both ends stay open for the test process's lifetime, so
/// frames the plugin sends are accepted and none ever arrive.
enum RequiredPortFixture {
    private static let queueFD: Int32? = {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &pair) == 0 else { return nil }
        return pair[0]
    }()

    /// The extra parameters `plugin` needs to be created, as config text values.
    static func parameters(for plugin: String) -> [String: String] {
        guard plugin == "netvsp", let fd = queueFD else { return [:] }
        return ["fds": "\(fd)"]
    }
}
