/// The 12-byte header before every frame on a port's queue fds: Linux's struct virtio_net_hdr_v1
/// (little-endian). It says how the kernel or netvsp must finish the frame: a checksum to fill
/// in (`needsChecksum`, from `checksumStart`, stored at `checksumStart + checksumOffset`) or a
/// large segment to cut into `segmentSize` pieces (`gsoType`).
public struct VirtioNetHeader: Sendable, Equatable {
    public static let size = 12

    public static let flagNeedsChecksum: UInt8 = 1
    public static let flagDataValid: UInt8 = 2

    public enum GSOType: UInt8, Sendable {
        case none = 0
        case tcpv4 = 1
        case udp = 3
        case tcpv6 = 4
        case udpL4 = 5
    }
    /// Added to the GSO type when the TCP segment carries ECN.
    public static let gsoECN: UInt8 = 0x80

    public var flags: UInt8
    public var gsoType: UInt8
    public var headerLength: UInt16
    public var segmentSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16
    public var bufferCount: UInt16

    public init(flags: UInt8 = 0, gsoType: UInt8 = GSOType.none.rawValue, headerLength: UInt16 = 0, segmentSize: UInt16 = 0,
                checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0, bufferCount: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.segmentSize = segmentSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
        self.bufferCount = bufferCount
    }

    /// A frame that needs nothing done.
    public static let plain = VirtioNetHeader()

    public var needsChecksum: Bool { flags & Self.flagNeedsChecksum != 0 }

    public func encode(into out: inout [UInt8]) {
        out.append(flags)
        out.append(gsoType)
        for value in [headerLength, segmentSize, checksumStart, checksumOffset, bufferCount] {
            out.append(UInt8(truncatingIfNeeded: value))
            out.append(UInt8(truncatingIfNeeded: value >> 8))
        }
    }

    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.size)
        encode(into: &out)
        return out
    }

    /// Nil when fewer than 12 bytes are given.
    public init?<C: Collection>(decoding bytes: C) where C.Element == UInt8 {
        guard bytes.count >= Self.size else { return nil }
        var i = bytes.startIndex
        func next() -> UInt8 { defer { i = bytes.index(after: i) }; return bytes[i] }
        func next16() -> UInt16 { let lo = UInt16(next()); return lo | UInt16(next()) << 8 }
        let flags = next(), gso = next()
        let headerLength = next16(), segmentSize = next16(), start = next16(), offset = next16(), count = next16()
        self.init(flags: flags, gsoType: gso, headerLength: headerLength, segmentSize: segmentSize,
                  checksumStart: start, checksumOffset: offset, bufferCount: count)
    }
}
