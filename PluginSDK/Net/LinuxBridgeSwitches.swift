#if canImport(Glibc)
import Glibc
#endif
import NetlinkProtocol

/// Creates, lists and deletes Veneer's switches: Linux bridges in the caller's network namespace,
/// managed over rtnetlink.
public struct LinuxBridgeSwitches: Sendable {
    public init() {}

    /// Creates switch `name`. `address` (internal and external) is the host's address on it;
    /// `uplink` (external only, required there) is enslaved. Everything made is undone on failure.
    public func create(name: String, type: SwitchType, address: IPNetwork? = nil, uplink: String? = nil) throws(SwitchError) -> SwitchInfo {
        try validName(name, role: "switch")
        switch type {
        case .private:
            if address != nil { throw SwitchError(.invalid, "switch '\(name)': a private switch has no host address (--address is for internal and external)") }
            if uplink != nil { throw SwitchError(.invalid, "switch '\(name)': a private switch has no uplink (--uplink is for external)") }
        case .internal:
            if uplink != nil { throw SwitchError(.invalid, "switch '\(name)': an internal switch has no uplink (use --type external)") }
        case .external:
            guard uplink != nil else { throw SwitchError(.invalid, "switch '\(name)': an external switch needs --uplink IFACE") }
        }
        if let uplink { try validName(uplink, role: "uplink") }

        let netlink = try openSocket()
        let links = try attempt { () throws(NetlinkFailure) in try netlink.links() }
        if let existing = links.first(where: { $0.name == name }) {
            if existing.kind == "bridge", existing.alias.flatMap(SwitchMarker.init(alias:)) != nil {
                throw SwitchError(.exists, "switch '\(name)' already exists")
            }
            throw SwitchError(.notVeneers, "interface '\(name)' already exists and is not a Veneer switch")
        }
        var uplinkLink: LinkMessage?
        if let uplink {
            guard let link = links.first(where: { $0.name == uplink }) else { throw SwitchError(.notFound, "uplink interface '\(uplink)' does not exist") }
            if let master = link.master, master != 0 {
                let owner = links.first { $0.index == master }?.name ?? "interface \(master)"
                throw SwitchError(.inUse, "uplink interface '\(uplink)' is already a port of '\(owner)'")
            }
            if link.kind == "bridge" { throw SwitchError(.invalid, "uplink interface '\(uplink)' is a bridge; an uplink must be a NIC, bond or similar") }
            if uplink == "lo" { throw SwitchError(.invalid, "uplink interface 'lo' is the loopback") }
            uplinkLink = link
        }

        let marker = SwitchMarker(type: type, uplink: uplink)
        try attempt { () throws(NetlinkFailure) in
            try netlink.perform(RouteRequest.createBridge(name: name, alias: marker.alias, sequence: netlink.nextSequence()),
                                what: "creating bridge '\(name)'")
        }
        do throws(SwitchError) {
            guard let bridge = try attempt({ () throws(NetlinkFailure) in try netlink.link(named: name) }) else {
                throw SwitchError(.failed, "bridge '\(name)' vanished right after it was created")
            }
            // VLAN access ports need the bridge's own VLAN filtering; kernels built without it
            // still get a working switch, and a VLAN port on it is refused with the reason.
            _ = try? enableVLANFiltering(netlink, bridgeIndex: bridge.index, name: name)
            if let uplinkLink {
                try attempt { () throws(NetlinkFailure) in
                    try netlink.perform(RouteRequest.setLink(index: uplinkLink.index, up: true, master: bridge.index, sequence: netlink.nextSequence()),
                                        what: "enslaving uplink '\(uplink ?? "")' to '\(name)'")
                }
            }
            if let address {
                try attempt { () throws(NetlinkFailure) in
                    try netlink.perform(RouteRequest.addAddress(index: bridge.index, family: address.family == .ipv4 ? Netlink.Family.inet : Netlink.Family.inet6,
                                                                address: address.address, prefixLength: address.prefixLength,
                                                                broadcast: address.broadcast, sequence: netlink.nextSequence()),
                                        what: "adding address \(address) to '\(name)'")
                }
            }
            try attempt { () throws(NetlinkFailure) in
                try netlink.perform(RouteRequest.setLink(index: bridge.index, up: true, sequence: netlink.nextSequence()), what: "bringing '\(name)' up")
            }
        } catch {
            // Deleting the bridge also releases the uplink and drops the address.
            if let bridge = try? netlink.link(named: name) {
                try? netlink.perform(RouteRequest.deleteLink(index: bridge.index, sequence: netlink.nextSequence()), what: "removing '\(name)'")
            }
            throw error
        }
        guard let info = try list().first(where: { $0.name == name }) else { throw SwitchError(.failed, "switch '\(name)' vanished right after it was created") }
        return info
    }

    /// Deletes switch `name`. Refuses a bridge that is not Veneer's, and a switch VMs are still on.
    public func delete(name: String) throws(SwitchError) {
        try validName(name, role: "switch")
        let netlink = try openSocket()
        let links = try attempt { () throws(NetlinkFailure) in try netlink.links() }
        guard let bridge = links.first(where: { $0.name == name }) else { throw SwitchError(.notFound, "no switch named '\(name)'") }
        guard bridge.kind == "bridge", bridge.alias.flatMap(SwitchMarker.init(alias:)) != nil else {
            throw SwitchError(.notVeneers, "interface '\(name)' is not a Veneer switch; not deleting it")
        }
        let vmPorts = links.filter { $0.master == bridge.index && $0.kind == "tun" }.compactMap(\.name)
        guard vmPorts.isEmpty else {
            throw SwitchError(.inUse, "switch '\(name)' still has VM ports (\(vmPorts.sorted().joined(separator: ", "))); stop those VMs first")
        }
        try attempt { () throws(NetlinkFailure) in
            try netlink.perform(RouteRequest.deleteLink(index: bridge.index, sequence: netlink.nextSequence()), what: "deleting bridge '\(name)'")
        }
    }

    /// Veneer's switches, by name.
    public func list() throws(SwitchError) -> [SwitchInfo] {
        let netlink = try openSocket()
        let links = try attempt { () throws(NetlinkFailure) in try netlink.links() }
        let addresses = try attempt { () throws(NetlinkFailure) in try netlink.addresses() }
        var result: [SwitchInfo] = []
        for link in links where link.kind == "bridge" {
            guard let name = link.name, let marker = link.alias.flatMap(SwitchMarker.init(alias:)) else { continue }
            let members = links.filter { $0.master == link.index }.compactMap(\.name)
            let networks = addresses.filter { Int32(bitPattern: $0.header.index) == link.index }.compactMap { a -> IPNetwork? in
                switch a.header.family {
                case Netlink.Family.inet where a.address.count == 4: IPNetwork(family: .ipv4, address: a.address, prefixLength: a.header.prefixLength)
                case Netlink.Family.inet6 where a.address.count == 16: IPNetwork(family: .ipv6, address: a.address, prefixLength: a.header.prefixLength)
                default: nil
                }
            }
            result.append(SwitchInfo(name: name, type: marker.type, uplink: marker.uplink, addresses: networks,
                                     ports: members.filter { $0 != marker.uplink }.sorted(),
                                     vlanFiltering: link.bridgeVLANFiltering == 1,
                                     up: link.header.flags & Netlink.InterfaceFlags.up != 0))
        }
        return result.sorted { $0.name < $1.name }
    }

    /// Turns on the bridge's VLAN filtering; the error names the kernel option when it is missing.
    func enableVLANFiltering(_ netlink: RouteNetlink, bridgeIndex: Int32, name: String) throws(NetworkError) {
        do throws(NetlinkFailure) {
            try netlink.perform(RouteRequest.setBridgeVLANFiltering(index: bridgeIndex, enabled: true, sequence: netlink.nextSequence()),
                                what: "turning on VLAN filtering of '\(name)'")
        } catch {
            if error.errno == EOPNOTSUPP {
                throw NetworkError("switch '\(name)': this kernel's bridges have no VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING), so VLAN access ports cannot work")
            }
            throw error.networkError
        }
    }

    func open() throws(NetworkError) -> RouteNetlink {
        do { return try RouteNetlink() } catch { throw error.networkError }
    }

    private func openSocket() throws(SwitchError) -> RouteNetlink {
        do { return try RouteNetlink() } catch { throw SwitchError(error) }
    }

    private func validName(_ name: String, role: String) throws(SwitchError) {
        do { try InterfaceName.validate(name, role: role) } catch { throw SwitchError(.invalid, error.message) }
    }

    /// Runs a netlink job for a switch operation.
    private func attempt<T>(_ body: () throws(NetlinkFailure) -> T) throws(SwitchError) -> T {
        do { return try body() } catch { throw SwitchError(error) }
    }
}

/// Runs a netlink job, turning its failure into the NetworkError every caller reports.
func wrap<T>(_ body: () throws(NetlinkFailure) -> T) throws(NetworkError) -> T {
    do { return try body() } catch { throw error.networkError }
}
