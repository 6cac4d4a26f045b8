#if canImport(Glibc)
import Glibc
#endif

/// An interface address with its prefix ("10.0.0.1/24", "fd00::1/64").
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    public enum Family: Sendable, Equatable { case ipv4, ipv6 }

    public var family: Family
    /// 4 or 16 bytes, network order.
    public var address: [UInt8]
    public var prefixLength: UInt8

    public init(family: Family, address: [UInt8], prefixLength: UInt8) {
        self.family = family
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses CIDR notation; the prefix is required.
    public init(cidr text: String) throws(NetworkError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = UInt8(parts[1]) else {
            throw NetworkError("address '\(text)' is not in CIDR form (like 10.0.0.1/24 or fd00::1/64)")
        }
        let host = String(parts[0])
        if host.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, host, &raw) == 1 else { throw NetworkError("address '\(text)': '\(host)' is not an IPv6 address") }
            guard prefix <= 128 else { throw NetworkError("address '\(text)': an IPv6 prefix is at most 128") }
            self.init(family: .ipv6, address: withUnsafeBytes(of: raw) { Array($0) }, prefixLength: prefix)
        } else {
            let octets = host.split(separator: ".", omittingEmptySubsequences: false)
            var bytes: [UInt8] = []
            for octet in octets {
                guard octet.count <= 3, let value = UInt8(octet) else { break }
                bytes.append(value)
            }
            guard octets.count == 4, bytes.count == 4 else { throw NetworkError("address '\(text)': '\(host)' is not an IPv4 address") }
            guard prefix <= 32 else { throw NetworkError("address '\(text)': an IPv4 prefix is at most 32") }
            self.init(family: .ipv4, address: bytes, prefixLength: prefix)
        }
    }

    /// The IPv4 broadcast address of the network (nil for IPv6, and for /31 and /32, which have none).
    public var broadcast: [UInt8]? {
        guard family == .ipv4, prefixLength < 31 else { return nil }
        let value = address.reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
        let hostMask = UInt32.max >> UInt32(prefixLength)
        let b = value | hostMask
        return [UInt8(b >> 24), UInt8((b >> 16) & 0xff), UInt8((b >> 8) & 0xff), UInt8(b & 0xff)]
    }

    public var description: String {
        switch family {
        case .ipv4:
            return address.map(String.init).joined(separator: ".") + "/\(prefixLength)"
        case .ipv6:
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: address.prefix(16)) }
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count)) != nil else { return "?/\(prefixLength)" }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/\(prefixLength)"
        }
    }
}
