#if canImport(Glibc)
import Glibc
#endif

/// Whether this process may manage interfaces: CAP_NET_ADMIN in its effective set. Read from
/// /proc/self/status ("CapEff:"), so a root process without the capability (a container) and a
/// non-root process granted it (setcap, ambient) are both judged right.
public enum NetworkCapabilities {
    static let capNetAdmin = 12

    public static var hasNetAdmin: Bool {
        guard let effective = effectiveCapabilities() else { return geteuid() == 0 }
        return effective & (UInt64(1) << UInt64(capNetAdmin)) != 0
    }

    /// The CapEff mask, or nil when /proc is unreadable.
    static func effectiveCapabilities() -> UInt64? {
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while content.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            content.append(contentsOf: chunk[0..<n])
        }
        return parseEffective(status: String(decoding: content, as: UTF8.self))
    }

    static func parseEffective(status: String) -> UInt64? {
        for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst("CapEff:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" }), radix: 16)
        }
        return nil
    }
}
