/// struct ifinfomsg (16 bytes): the header of every RTM_*LINK message.
public struct InterfaceInfoHeader: Sendable, Equatable {
    public static let size = 16
    public var family: UInt8
    public var deviceType: UInt16
    public var index: Int32
    public var flags: UInt32
    /// Which bits of `flags` a SETLINK/NEWLINK changes.
    public var change: UInt32

    public init(family: UInt8 = Netlink.Family.unspecified, deviceType: UInt16 = 0, index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) {
        self.family = family
        self.deviceType = deviceType
        self.index = index
        self.flags = flags
        self.change = change
    }

    public var encoded: [UInt8] {
        var out: [UInt8] = [family, 0]
        out.appendHost(deviceType)
        out.appendHost(index)
        out.appendHost(flags)
        out.appendHost(change)
        return out
    }

    public init(decoding bytes: [UInt8]) throws(NetlinkDecodeError) {
        guard bytes.count >= Self.size, let type = bytes.readHost(UInt16.self, at: 2), let index = bytes.readHost(Int32.self, at: 4),
              let flags = bytes.readHost(UInt32.self, at: 8), let change = bytes.readHost(UInt32.self, at: 12) else {
            throw NetlinkDecodeError("link message with \(bytes.count) payload bytes (ifinfomsg needs \(Self.size))")
        }
        self.init(family: bytes[0], deviceType: type, index: index, flags: flags, change: change)
    }
}

/// struct ifaddrmsg (8 bytes): the header of every RTM_*ADDR message.
public struct InterfaceAddressHeader: Sendable, Equatable {
    public static let size = 8
    public var family: UInt8
    public var prefixLength: UInt8
    public var flags: UInt8
    public var scope: UInt8
    public var index: UInt32

    public init(family: UInt8, prefixLength: UInt8 = 0, flags: UInt8 = 0, scope: UInt8 = 0, index: UInt32 = 0) {
        self.family = family
        self.prefixLength = prefixLength
        self.flags = flags
        self.scope = scope
        self.index = index
    }

    public var encoded: [UInt8] {
        var out: [UInt8] = [family, prefixLength, flags, scope]
        out.appendHost(index)
        return out
    }

    public init(decoding bytes: [UInt8]) throws(NetlinkDecodeError) {
        guard bytes.count >= Self.size, let index = bytes.readHost(UInt32.self, at: 4) else {
            throw NetlinkDecodeError("address message with \(bytes.count) payload bytes (ifaddrmsg needs \(Self.size))")
        }
        self.init(family: bytes[0], prefixLength: bytes[1], flags: bytes[2], scope: bytes[3], index: index)
    }
}

/// struct bridge_vlan_info (4 bytes): one VLAN of a bridge port, in IFLA_BRIDGE_VLAN_INFO.
public struct BridgeVLANInfo: Sendable, Equatable {
    public static let size = 4
    public static let flagMaster: UInt16 = 0x1
    public static let flagPVID: UInt16 = 0x2
    public static let flagUntagged: UInt16 = 0x4

    public var flags: UInt16
    public var vid: UInt16

    public init(flags: UInt16, vid: UInt16) {
        self.flags = flags
        self.vid = vid
    }

    /// An access port's VLAN: ingress untagged frames join it, egress frames leave untagged.
    public static func access(_ vid: UInt16) -> BridgeVLANInfo { BridgeVLANInfo(flags: flagPVID | flagUntagged, vid: vid) }
    /// A trunk membership (the uplink of an external switch): frames keep their tag.
    public static func tagged(_ vid: UInt16) -> BridgeVLANInfo { BridgeVLANInfo(flags: 0, vid: vid) }

    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.appendHost(flags)
        out.appendHost(vid)
        return out
    }

    public init(decoding bytes: [UInt8]) throws(NetlinkDecodeError) {
        guard let flags = bytes.readHost(UInt16.self, at: 0), let vid = bytes.readHost(UInt16.self, at: 2) else {
            throw NetlinkDecodeError("bridge VLAN info with \(bytes.count) bytes (needs \(Self.size))")
        }
        self.init(flags: flags, vid: vid)
    }
}
