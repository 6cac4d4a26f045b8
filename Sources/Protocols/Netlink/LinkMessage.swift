/// What an RTM_NEWLINK reply (from GETLINK) says about one interface, as far as Veneer reads it.
public struct LinkMessage: Sendable, Equatable {
    public var header: InterfaceInfoHeader
    public var name: String?
    /// IFLA_INFO_KIND: "bridge", "tun", "veth", ...; nil for a device without link info (a NIC).
    public var kind: String?
    public var alias: String?
    /// The bridge this interface is a port of (IFLA_MASTER).
    public var master: Int32?
    public var mtu: UInt32?
    public var hardwareAddress: [UInt8]?
    public var operState: UInt8?
    public var carrier: UInt8?
    /// IFLA_BR_VLAN_FILTERING of a bridge, when the kernel reports it.
    public var bridgeVLANFiltering: UInt8?
    /// IFLA_AF_SPEC's bridge VLANs, present in AF_BRIDGE dumps asked with RTEXT_FILTER_BRVLAN.
    public var bridgeVLANs: [BridgeVLANInfo]

    public var index: Int32 { header.index }

    public init(decoding message: NetlinkMessage) throws(NetlinkDecodeError) {
        header = try InterfaceInfoHeader(decoding: message.payload)
        let attributes = try NetlinkAttributes(parsing: message.payload[InterfaceInfoHeader.size...], context: "link message")
        name = attributes.string(Netlink.LinkAttribute.ifName)
        alias = attributes.string(Netlink.LinkAttribute.ifAlias)
        master = attributes.u32(Netlink.LinkAttribute.master).map { Int32(bitPattern: $0) }
        mtu = attributes.u32(Netlink.LinkAttribute.mtu)
        hardwareAddress = attributes.first(Netlink.LinkAttribute.address)
        operState = attributes.u8(Netlink.LinkAttribute.operState)
        carrier = attributes.u8(Netlink.LinkAttribute.carrier)
        let info = try attributes.nested(Netlink.LinkAttribute.linkInfo, context: "IFLA_LINKINFO")
        kind = info?.string(Netlink.LinkInfoAttribute.kind)
        bridgeVLANFiltering = nil
        if kind == "bridge", let data = try info?.nested(Netlink.LinkInfoAttribute.data, context: "bridge IFLA_INFO_DATA") {
            bridgeVLANFiltering = data.u8(Netlink.BridgeAttribute.vlanFiltering)
        }
        bridgeVLANs = []
        if header.family == Netlink.Family.bridge, let spec = try attributes.nested(Netlink.LinkAttribute.afSpec, context: "IFLA_AF_SPEC") {
            for payload in spec.all(Netlink.BridgeSpecAttribute.vlanInfo) {
                bridgeVLANs.append(try BridgeVLANInfo(decoding: payload))
            }
        }
    }
}

/// What an RTM_NEWADDR reply (from GETADDR) says about one address.
public struct AddressMessage: Sendable, Equatable {
    public var header: InterfaceAddressHeader
    /// IFA_LOCAL when present (the interface's own address on point-to-point links), else IFA_ADDRESS.
    public var address: [UInt8]

    public init(decoding message: NetlinkMessage) throws(NetlinkDecodeError) {
        header = try InterfaceAddressHeader(decoding: message.payload)
        let attributes = try NetlinkAttributes(parsing: message.payload[InterfaceAddressHeader.size...], context: "address message")
        guard let address = attributes.first(Netlink.AddressAttribute.local) ?? attributes.first(Netlink.AddressAttribute.address) else {
            throw NetlinkDecodeError("address message for interface \(header.index) has neither IFA_LOCAL nor IFA_ADDRESS")
        }
        self.address = address
    }
}
