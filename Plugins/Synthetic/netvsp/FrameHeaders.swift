/// Where the layers of an Ethernet frame start, from its first bytes (a copy: the guest may
/// change its own buffer meanwhile). Only what the offloads need: an optional 802.1Q tag, IPv4
/// (with options) or IPv6 (without extension headers), TCP or UDP.
struct FrameHeaders: Sendable, Equatable {
    static let ethernetSize = 14
    static let etherTypeVLAN: UInt16 = 0x8100
    static let etherTypeIPv4: UInt16 = 0x0800
    static let etherTypeIPv6: UInt16 = 0x86DD
    static let protocolTCP: UInt8 = 6
    static let protocolUDP: UInt8 = 17

    enum Network: Sendable, Equatable { case ipv4, ipv6, other }

    var network: Network = .other
    /// Offset of the IP header (after any VLAN tag).
    var l3Offset = 0
    var l4Offset = 0
    var l4Protocol: UInt8 = 0
    /// TCP header length (data offset × 4), 0 when not TCP or not visible.
    var tcpHeaderLength = 0
    var hasVLANTag = false

    /// Parses the first `length` bytes of `s` (starting at `o`).
    init(_ s: Scratch, at o: Int = 0, length: Int) {
        guard length >= Self.ethernetSize else { return }
        var etherType = s.u16be(o + 12)
        l3Offset = Self.ethernetSize
        if etherType == Self.etherTypeVLAN && length >= Self.ethernetSize + 4 {
            hasVLANTag = true
            etherType = s.u16be(o + 16)
            l3Offset += 4
        }
        switch etherType {
        case Self.etherTypeIPv4:
            guard length >= l3Offset + 20, s[o + l3Offset] >> 4 == 4 else { return }
            let ihl = Int(s[o + l3Offset] & 0xF) * 4
            guard ihl >= 20, length >= l3Offset + ihl else { return }
            network = .ipv4
            l4Protocol = s[o + l3Offset + 9]
            l4Offset = l3Offset + ihl
        case Self.etherTypeIPv6:
            guard length >= l3Offset + 40, s[o + l3Offset] >> 4 == 6 else { return }
            network = .ipv6
            l4Protocol = s[o + l3Offset + 6]
            l4Offset = l3Offset + 40
        default:
            return
        }
        if l4Protocol == Self.protocolTCP && length >= l4Offset + 20 {
            tcpHeaderLength = Int(s[o + l4Offset + 12] >> 4) * 4
            if tcpHeaderLength < 20 || length < l4Offset + tcpHeaderLength { tcpHeaderLength = 0 }
        }
    }

    /// The RSS hash input (RFC Toeplitz over source and destination address, then ports for TCP),
    /// written into `into` at 0; its length, or 0 when the frame is not IP.
    func hashInput(_ s: Scratch, at o: Int = 0, length: Int, into: inout [UInt8]) -> Int {
        var n = 0
        func take(_ from: Int, _ count: Int) {
            for i in 0..<count { into[n + i] = s[o + from + i] }
            n += count
        }
        switch network {
        case .ipv4: take(l3Offset + 12, 8)
        case .ipv6: take(l3Offset + 8, 32)
        case .other: return 0
        }
        if l4Protocol == Self.protocolTCP && length >= l4Offset + 4 { take(l4Offset, 4) }
        return n
    }
}

/// The Toeplitz hash RSS uses: for every set bit of the input, the 32 key bits starting at that
/// bit position are XORed into the result.
enum Toeplitz {
    static func hash(key: [UInt8], input: [UInt8], count: Int) -> UInt32 {
        guard key.count >= 4 else { return 0 }
        var result: UInt32 = 0
        var window = UInt32(key[0]) << 24 | UInt32(key[1]) << 16 | UInt32(key[2]) << 8 | UInt32(key[3])
        for i in 0..<min(count, input.count) {
            let next = i + 4 < key.count ? key[i + 4] : 0
            for bit in 0..<8 {
                if input[i] & (0x80 >> bit) != 0 { result ^= window }
                window = window << 1 | UInt32((next >> (7 - bit)) & 1)
            }
        }
        return result
    }
}

/// RFC 1071 helpers for completing checksums.
enum InternetChecksum {
    static func fold(_ sum: UInt64) -> UInt16 {
        var s = sum
        while s >> 16 != 0 { s = (s & 0xFFFF) + (s >> 16) }
        return UInt16(s)
    }

    /// Ones'-complement sum of `length` bytes of `s` at `o` (big-endian 16-bit words).
    static func sum(_ s: Scratch, at o: Int, length: Int) -> UInt64 {
        var sum: UInt64 = 0
        var i = 0
        while i + 1 < length {
            sum += UInt64(s.u16be(o + i))
            i += 2
        }
        if i < length { sum += UInt64(s[o + i]) << 8 }
        return sum
    }
}
