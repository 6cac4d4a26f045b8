/// The rtnetlink requests Veneer sends, built as bytes. Each asks for an acknowledgement so the
/// kernel's verdict (and its extended-ack text) comes back.
public enum RouteRequest {
    static let change: UInt16 = Netlink.Flags.request | Netlink.Flags.ack

    /// RTM_NEWLINK: a new bridge called `name` with IFLA_IFALIAS `alias`.
    public static func createBridge(name: String, alias: String, sequence: UInt32) -> NetlinkMessage {
        NetlinkMessage(type: Netlink.MessageType.newLink, flags: change | Netlink.Flags.create | Netlink.Flags.exclusive, sequence: sequence,
                       header: InterfaceInfoHeader().encoded,
                       attributes: [.string(Netlink.LinkAttribute.ifName, name),
                                    .string(Netlink.LinkAttribute.ifAlias, alias),
                                    .nested(type: Netlink.LinkAttribute.linkInfo, [.string(Netlink.LinkInfoAttribute.kind, "bridge")])])
    }

    /// RTM_NEWLINK: a veth pair (`name` and its `peer`).
    public static func createVethPair(name: String, peer: String, sequence: UInt32) -> NetlinkMessage {
        var peerPayload = InterfaceInfoHeader().encoded
        NetlinkAttribute.string(Netlink.LinkAttribute.ifName, peer).encode(into: &peerPayload)
        return NetlinkMessage(type: Netlink.MessageType.newLink, flags: change | Netlink.Flags.create | Netlink.Flags.exclusive, sequence: sequence,
                              header: InterfaceInfoHeader().encoded,
                              attributes: [.string(Netlink.LinkAttribute.ifName, name),
                                           .nested(type: Netlink.LinkAttribute.linkInfo, [
                                               .string(Netlink.LinkInfoAttribute.kind, "veth"),
                                               .nested(type: Netlink.LinkInfoAttribute.data, [.bytes(type: Netlink.VethAttribute.peer, peerPayload)]),
                                           ])])
    }

    /// RTM_NEWLINK on an existing bridge: IFLA_BR_VLAN_FILTERING.
    public static func setBridgeVLANFiltering(index: Int32, enabled: Bool, sequence: UInt32) -> NetlinkMessage {
        NetlinkMessage(type: Netlink.MessageType.newLink, flags: change, sequence: sequence,
                       header: InterfaceInfoHeader(index: index).encoded,
                       attributes: [.nested(type: Netlink.LinkAttribute.linkInfo, [
                           .string(Netlink.LinkInfoAttribute.kind, "bridge"),
                           .nested(type: Netlink.LinkInfoAttribute.data, [.u8(Netlink.BridgeAttribute.vlanFiltering, enabled ? 1 : 0)]),
                       ])])
    }

    /// RTM_SETLINK: any of up/down, MTU and bridge (master; 0 leaves the bridge) of interface `index`.
    public static func setLink(index: Int32, up: Bool? = nil, mtu: UInt32? = nil, master: Int32? = nil, sequence: UInt32) -> NetlinkMessage {
        var header = InterfaceInfoHeader(index: index)
        if let up {
            header.change = Netlink.InterfaceFlags.up
            header.flags = up ? Netlink.InterfaceFlags.up : 0
        }
        var attributes: [NetlinkAttribute] = []
        if let mtu { attributes.append(.u32(Netlink.LinkAttribute.mtu, mtu)) }
        if let master { attributes.append(.u32(Netlink.LinkAttribute.master, UInt32(bitPattern: master))) }
        return NetlinkMessage(type: Netlink.MessageType.setLink, flags: change, sequence: sequence, header: header.encoded, attributes: attributes)
    }

    /// RTM_DELLINK of interface `index`.
    public static func deleteLink(index: Int32, sequence: UInt32) -> NetlinkMessage {
        NetlinkMessage(type: Netlink.MessageType.deleteLink, flags: change, sequence: sequence, header: InterfaceInfoHeader(index: index).encoded, attributes: [])
    }

    /// RTM_SETLINK (add) or RTM_DELLINK (remove), family AF_BRIDGE: one VLAN of bridge port `index`.
    public static func bridgeVLAN(index: Int32, _ vlan: BridgeVLANInfo, add: Bool, sequence: UInt32) -> NetlinkMessage {
        NetlinkMessage(type: add ? Netlink.MessageType.setLink : Netlink.MessageType.deleteLink, flags: change, sequence: sequence,
                       header: InterfaceInfoHeader(family: Netlink.Family.bridge, index: index).encoded,
                       attributes: [.nested(type: Netlink.LinkAttribute.afSpec, [.bytes(type: Netlink.BridgeSpecAttribute.vlanInfo, vlan.encoded)])])
    }

    /// RTM_NEWADDR: `address`/`prefixLength` on interface `index` (with the broadcast address for IPv4).
    public static func addAddress(index: Int32, family: UInt8, address: [UInt8], prefixLength: UInt8, broadcast: [UInt8]?, sequence: UInt32) -> NetlinkMessage {
        var attributes: [NetlinkAttribute] = [.bytes(type: Netlink.AddressAttribute.local, address), .bytes(type: Netlink.AddressAttribute.address, address)]
        if let broadcast { attributes.append(.bytes(type: Netlink.AddressAttribute.broadcast, broadcast)) }
        return NetlinkMessage(type: Netlink.MessageType.newAddress, flags: change | Netlink.Flags.create | Netlink.Flags.exclusive, sequence: sequence,
                              header: InterfaceAddressHeader(family: family, prefixLength: prefixLength, index: UInt32(bitPattern: index)).encoded,
                              attributes: attributes)
    }

    /// RTM_GETLINK dump of every interface; with `bridgeVLANs`, the AF_BRIDGE dump of ports and their VLANs.
    public static func dumpLinks(bridgeVLANs: Bool = false, sequence: UInt32) -> NetlinkMessage {
        NetlinkMessage(type: Netlink.MessageType.getLink, flags: Netlink.Flags.request | Netlink.Flags.dump, sequence: sequence,
                       header: InterfaceInfoHeader(family: bridgeVLANs ? Netlink.Family.bridge : Netlink.Family.unspecified).encoded,
                       attributes: bridgeVLANs ? [.u32(Netlink.LinkAttribute.extMask, Netlink.ExtMask.bridgeVLAN)] : [])
    }

    /// RTM_GETADDR dump of every address.
    public static func dumpAddresses(sequence: UInt32) -> NetlinkMessage {
        NetlinkMessage(type: Netlink.MessageType.getAddress, flags: Netlink.Flags.request | Netlink.Flags.dump, sequence: sequence,
                       header: InterfaceAddressHeader(family: Netlink.Family.unspecified).encoded, attributes: [])
    }
}
