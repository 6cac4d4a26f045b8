#if canImport(Glibc)
import Glibc
#endif
import NetlinkProtocol
import VeneerNetSupport

/// The production `NetworkBackend`: each port is a multi-queue TAP (IFF_VNET_HDR, 12-byte
/// headers, offloads on) enslaved to the Veneer switch's Linux bridge, with its access VLAN set
/// through the bridge's VLAN filtering. Works in the network namespace of the calling thread.
public struct LinuxBridgeBackend: NetworkBackend {
    /// The kernel's limit on TAP queues (MAX_TAP_QUEUES).
    public static let maximumQueues = 256
    public static let mtuRange = 68...65521

    public init() {}

    public func attach(_ spec: PortSpec) throws(NetworkError) -> any NetworkPort {
        try attachTAP(spec)
    }

    /// `attach` with the concrete port type, for callers that want its offloads.
    public func attachTAP(_ spec: PortSpec) throws(NetworkError) -> TAPPort {
        try InterfaceName.validate(spec.interfaceName, role: "port")
        guard (1...Self.maximumQueues).contains(spec.queues) else {
            throw NetworkError("port '\(spec.interfaceName)': \(spec.queues) queues; a TAP has 1 to \(Self.maximumQueues)")
        }
        guard Self.mtuRange.contains(spec.mtu) else {
            throw NetworkError("port '\(spec.interfaceName)': MTU \(spec.mtu) is outside \(Self.mtuRange.lowerBound)-\(Self.mtuRange.upperBound)")
        }
        if let vlan = spec.vlan, !(1...4094).contains(vlan) {
            throw NetworkError("port '\(spec.interfaceName)': VLAN \(vlan) is outside 1-4094")
        }

        let switches = LinuxBridgeSwitches()
        let netlink = try switches.open()
        let links = try wrap { () throws(NetlinkFailure) in try netlink.links() }
        guard let bridge = links.first(where: { $0.name == spec.switchName }),
              bridge.kind == "bridge", let marker = bridge.alias.flatMap(SwitchMarker.init(alias:)) else {
            throw NetworkError("port '\(spec.interfaceName)': no Veneer switch named '\(spec.switchName)' (create it with veneer switch create)")
        }
        guard !links.contains(where: { $0.name == spec.interfaceName }) else {
            throw NetworkError("port '\(spec.interfaceName)': an interface of that name already exists (another VM's NIC, or a leftover)")
        }

        var fds: [Int32] = []
        do throws(NetworkError) {
            for queue in 0..<spec.queues {
                let fd = veneer_tap_open_queue(spec.interfaceName)
                guard fd >= 0 else {
                    let hint = -fd == EPERM ? " (needs CAP_NET_ADMIN)" : ""
                    throw NetworkError("port '\(spec.interfaceName)': opening TAP queue \(queue): \(errnoText(-fd))\(hint)")
                }
                fds.append(fd)
            }
            let result = veneer_tap_set_vnet_header_size(fds[0], Int32(VirtioNetHeader.size))
            guard result == 0 else {
                throw NetworkError("port '\(spec.interfaceName)': setting the vnet header size: \(errnoText(-result))")
            }
            var offloads: TAPOffloads = []
            for candidate in TAPOffloads.preferences where veneer_tap_set_offload(fds[0], candidate.rawValue) == 0 {
                offloads = candidate
                break
            }
            guard let tap = try wrap({ () throws(NetlinkFailure) in try netlink.link(named: spec.interfaceName) }) else {
                throw NetworkError("port '\(spec.interfaceName)': the TAP vanished right after it was created")
            }
            try wrap { () throws(NetlinkFailure) in
                try netlink.perform(RouteRequest.setLink(index: tap.index, mtu: UInt32(spec.mtu), master: bridge.index, sequence: netlink.nextSequence()),
                                    what: "port '\(spec.interfaceName)': joining switch '\(spec.switchName)' with MTU \(spec.mtu)")
            }
            if let vlan = spec.vlan {
                try setAccessVLAN(vlan, netlink: netlink, port: tap.index, bridge: bridge, marker: marker, links: links, spec: spec)
            }
            try wrap { () throws(NetlinkFailure) in
                try netlink.perform(RouteRequest.setLink(index: tap.index, up: true, sequence: netlink.nextSequence()),
                                    what: "port '\(spec.interfaceName)': bringing it up")
            }
            return TAPPort(spec: spec, fds: fds, offloads: offloads)
        } catch {
            // The TAP is not persistent: closing its queues removes it from the bridge and the system.
            for fd in fds { Glibc.close(fd) }
            throw error
        }
    }

    /// The port's only VLAN becomes `vlan`, untagged and its PVID; the uplink of an external
    /// switch carries it tagged.
    private func setAccessVLAN(_ vlan: UInt16, netlink: RouteNetlink, port: Int32, bridge: LinkMessage, marker: SwitchMarker,
                               links: [LinkMessage], spec: PortSpec) throws(NetworkError) {
        if bridge.bridgeVLANFiltering != 1 {
            try LinuxBridgeSwitches().enableVLANFiltering(netlink, bridgeIndex: bridge.index, name: spec.switchName)
        }
        let what = "port '\(spec.interfaceName)': VLAN \(vlan)"
        try wrap { () throws(NetlinkFailure) in
            try netlink.perform(RouteRequest.bridgeVLAN(index: port, .access(vlan), add: true, sequence: netlink.nextSequence()), what: what)
        }
        if vlan != 1 {
            // The bridge's default VLAN 1 would otherwise stay a second membership of the port.
            try wrap { () throws(NetlinkFailure) in
                try netlink.perform(RouteRequest.bridgeVLAN(index: port, BridgeVLANInfo(flags: 0, vid: 1), add: false, sequence: netlink.nextSequence()),
                                    what: "\(what): leaving the default VLAN 1")
            }
        }
        if let uplinkName = marker.uplink, let uplink = links.first(where: { $0.name == uplinkName && $0.master == bridge.index }) {
            try wrap { () throws(NetlinkFailure) in
                try netlink.perform(RouteRequest.bridgeVLAN(index: uplink.index, .tagged(vlan), add: true, sequence: netlink.nextSequence()),
                                    what: "\(what): carrying it tagged on uplink '\(uplinkName)'")
            }
        }
    }
}
