/// The 12-byte header in front of every frame on a port's queue fds: Linux's
/// `struct virtio_net_hdr_v1` (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset,
/// num_buffers; little-endian), as a TAP with IFF_VNET_HDR reads and writes it.
struct VirtioNetHeader: Sendable, Equatable {
    static let size = 12
    static let needsChecksum: UInt8 = 1
    static let dataValid: UInt8 = 2
    static let gsoNone: UInt8 = 0
    static let gsoTCPv4: UInt8 = 1
    static let gsoUDP: UInt8 = 3
    static let gsoTCPv6: UInt8 = 4

    var flags: UInt8 = 0
    var gsoType: UInt8 = 0
    var headerLength: UInt16 = 0
    var gsoSize: UInt16 = 0
    var checksumStart: UInt16 = 0
    var checksumOffset: UInt16 = 0

    init(flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0, checksumStart: UInt16 = 0,
         checksumOffset: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    init(_ s: Scratch, at o: Int = 0) {
        flags = s[o]
        gsoType = s[o + 1]
        headerLength = UInt16(s[o + 2]) | UInt16(s[o + 3]) << 8
        gsoSize = UInt16(s[o + 4]) | UInt16(s[o + 5]) << 8
        checksumStart = UInt16(s[o + 6]) | UInt16(s[o + 7]) << 8
        checksumOffset = UInt16(s[o + 8]) | UInt16(s[o + 9]) << 8
    }

    init(_ b: [UInt8]) {
        let s = Scratch(Self.size)
        for (i, v) in b.prefix(Self.size).enumerated() { s[i] = v }
        self.init(s)
    }

    func write(to s: Scratch, at o: Int = 0) {
        s[o] = flags
        s[o + 1] = gsoType
        s.setU16le(headerLength, at: o + 2)
        s.setU16le(gsoSize, at: o + 4)
        s.setU16le(checksumStart, at: o + 6)
        s.setU16le(checksumOffset, at: o + 8)
        s.setU16le(0, at: o + 10)
    }

    var bytes: [UInt8] {
        let s = Scratch(Self.size)
        write(to: s)
        return Array(s.bytes)
    }
}
