/// The NDIS_OFFLOAD object answering TCP_OFFLOAD_HARDWARE_CAPABILITIES: what the VSP does for
/// the guest (checksums, LSO v2, RSC), in the revision the guest asked for.
public struct NDISOffloadCapabilities: Sendable, Equatable {
    /// Object sizes by revision: 1 (up to LSO v2 and flags), 2 (+ IPsec v2), 3 (+ RSC, GRE).
    public static func size(revision: UInt8) -> Int {
        switch revision {
        case ...1: 112
        case 2: 144
        default: 156
        }
    }

    public enum Offset {
        public static let ip4TransmitEncapsulation = 4, ip4Transmit = 8, ip4ReceiveEncapsulation = 12, ip4Receive = 16
        public static let ip6TransmitEncapsulation = 20, ip6Transmit = 24, ip6ReceiveEncapsulation = 28, ip6Receive = 32
        public static let lsoV2IP4Encapsulation = 80, lsoV2IP4MaxSize = 84, lsoV2IP4MinSegments = 88
        public static let lsoV2IP6Encapsulation = 92, lsoV2IP6MaxSize = 96, lsoV2IP6MinSegments = 100, lsoV2IP6Options = 104
        public static let rscIP4 = 144, rscIP6 = 145
    }

    /// Checksum capability bits Linux tests (IPv4: TCP | TCP options; UDP. IPv6: TCP | extension
    /// headers | TCP options; UDP).
    public static let tcp4Checksum: UInt32 = 0x14
    public static let udpChecksum: UInt32 = 0x40
    public static let tcp6Checksum: UInt32 = 0x15
    public static let encapsulation8023: UInt32 = 0x2
    /// LSO v2 IPv6: extension headers and TCP options supported.
    public static let lsoV2IP6Options: UInt32 = 0x5

    public var checksum: Bool
    /// Largest LSO v2 send (0: no LSO).
    public var lsoMaxSize: UInt32
    public var lsoMinSegments: UInt32
    public var rsc: Bool

    public init(checksum: Bool, lsoMaxSize: UInt32, lsoMinSegments: UInt32 = 2, rsc: Bool = false) {
        self.checksum = checksum
        self.lsoMaxSize = lsoMaxSize
        self.lsoMinSegments = lsoMinSegments
        self.rsc = rsc
    }

    public func encoded(revision: UInt8) -> [UInt8] {
        let revision = max(1, min(revision, 3))
        let size = Self.size(revision: revision)
        var b = [UInt8](repeating: 0, count: size)
        NDISObjectHeader(type: NDISObjectHeader.typeOffload, revision: revision, size: UInt16(size)).encode(into: &b)
        if checksum {
            b.putLE(Self.encapsulation8023, at: Offset.ip4TransmitEncapsulation)
            b.putLE(Self.tcp4Checksum | Self.udpChecksum, at: Offset.ip4Transmit)
            b.putLE(Self.encapsulation8023, at: Offset.ip4ReceiveEncapsulation)
            b.putLE(Self.tcp4Checksum | Self.udpChecksum, at: Offset.ip4Receive)
            b.putLE(Self.encapsulation8023, at: Offset.ip6TransmitEncapsulation)
            b.putLE(Self.tcp6Checksum | Self.udpChecksum, at: Offset.ip6Transmit)
            b.putLE(Self.encapsulation8023, at: Offset.ip6ReceiveEncapsulation)
            b.putLE(Self.tcp6Checksum | Self.udpChecksum, at: Offset.ip6Receive)
        }
        if lsoMaxSize > 0 {
            b.putLE(Self.encapsulation8023, at: Offset.lsoV2IP4Encapsulation)
            b.putLE(lsoMaxSize, at: Offset.lsoV2IP4MaxSize)
            b.putLE(lsoMinSegments, at: Offset.lsoV2IP4MinSegments)
            b.putLE(Self.encapsulation8023, at: Offset.lsoV2IP6Encapsulation)
            b.putLE(lsoMaxSize, at: Offset.lsoV2IP6MaxSize)
            b.putLE(lsoMinSegments, at: Offset.lsoV2IP6MinSegments)
            b.putLE(Self.lsoV2IP6Options, at: Offset.lsoV2IP6Options)
        }
        if revision >= 3 && rsc {
            b[Offset.rscIP4] = 1
            b[Offset.rscIP6] = 1
        }
        return b
    }
}

/// The NDIS_OFFLOAD_PARAMETERS a guest sets: what it wants turned on.
public struct NDISOffloadParameters: Sendable, Equatable {
    /// 0 no change, 1 off, 2 transmit only, 3 receive only, 4 both.
    public var ip4Checksum: UInt8
    public var tcp4Checksum: UInt8
    public var udp4Checksum: UInt8
    public var tcp6Checksum: UInt8
    public var udp6Checksum: UInt8
    /// LSO v2: 0 no change, 1 off, 2 on.
    public var lsoV2IP4: UInt8
    public var lsoV2IP6: UInt8

    public static let minimumSize = 22

    public init?(_ bytes: [UInt8]) {
        guard let header = NDISObjectHeader(bytes), header.type == NDISObjectHeader.typeDefault,
              bytes.count >= Self.minimumSize, Int(header.size) <= bytes.count, Int(header.size) >= Self.minimumSize
        else { return nil }
        ip4Checksum = bytes[4]
        tcp4Checksum = bytes[5]
        udp4Checksum = bytes[6]
        tcp6Checksum = bytes[7]
        udp6Checksum = bytes[8]
        lsoV2IP4 = bytes[11]
        lsoV2IP6 = bytes[12]
    }

    public init(tcp4Checksum: UInt8, udp4Checksum: UInt8, tcp6Checksum: UInt8, udp6Checksum: UInt8, lsoV2IP4: UInt8, lsoV2IP6: UInt8) {
        ip4Checksum = 1
        self.tcp4Checksum = tcp4Checksum
        self.udp4Checksum = udp4Checksum
        self.tcp6Checksum = tcp6Checksum
        self.udp6Checksum = udp6Checksum
        self.lsoV2IP4 = lsoV2IP4
        self.lsoV2IP6 = lsoV2IP6
    }

    /// Revision 3, 28 bytes, as Linux sends it (tests).
    public func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 28)
        NDISObjectHeader(type: NDISObjectHeader.typeDefault, revision: 3, size: 28).encode(into: &b)
        b[4] = ip4Checksum; b[5] = tcp4Checksum; b[6] = udp4Checksum; b[7] = tcp6Checksum; b[8] = udp6Checksum
        b[11] = lsoV2IP4; b[12] = lsoV2IP6
        return b
    }
}
