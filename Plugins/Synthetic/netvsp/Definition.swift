import VeneerNet
import VeneerPluginKit

extension NetVSPDevice {
    static let definition = PluginDefinition(
        name: "netvsp",
        version: "1.0.0",
        summary: "synthetic network adapter (Hyper-V netvsp): NVSP and RNDIS over VMBus, frames to a switch port",
        kind: .synthetic,
        stateVersion: 1,
        parameters: [
            ParameterSpec("fds", .string, default: "",
                          doc: "comma-separated pre-opened queue fds (a TAP's queues with IFF_VNET_HDR, or socketpair ends): one per queue"),
            ParameterSpec("mac", .string, default: "",
                          doc: "the NIC's MAC address, e.g. 00:15:5d:01:02:03 (default: derived from the VM name and device name)"),
            ParameterSpec("vlan", .int(min: 0, max: 4094), default: "0", doc: "access VLAN of the port (0: untagged port)"),
            ParameterSpec("allow_mac_spoofing", .bool, default: "false",
                          doc: "let the guest send frames from other source addresses (off: such frames are dropped and counted)"),
            ParameterSpec("bandwidth", .int(min: 0, max: 1 << 42), default: "0",
                          doc: "cap on guest-to-switch traffic in bits per second (0: none)"),
            ParameterSpec("mtu", .int(min: 1500, max: 9000), default: "1500", doc: "the MTU the guest is told (1500-9000)"),
            ParameterSpec("max_queues", .int(min: 1, max: 64), default: "16",
                          doc: "queues (primary + sub-channels) at most; also bounded by the vCPUs"),
            ParameterSpec("link_speed", .int(min: 1_000_000, max: 1 << 42), default: "10000000000",
                          doc: "link speed reported to the guest, bits per second"),
            ParameterSpec("instance", .string, default: "",
                          doc: "the adapter's VMBus instance GUID (default: derived from the device name)"),
        ],
        // Each channel is served under its own lock (ChannelTable), each receive queue under its
        // own; what they share (NIC) has short locks of its own.
        concurrent: true
    ) { host, params, name throws(PluginError) in
        var mac: MACAddress?
        if !params.string("mac").isEmpty {
            guard let parsed = MACAddress(params.string("mac")) else {
                throw PluginError("device '\(name)': mac '\(params.string("mac"))' is not a MAC address (00:15:5d:01:02:03)")
            }
            guard parsed.bytes.0 & 1 == 0 else { throw PluginError("device '\(name)': mac \(parsed) is a multicast address") }
            mac = parsed
        }
        let bandwidth = params.int("bandwidth")
        let configuration = NICConfiguration(
            mtu: Int(params.int("mtu")), mac: mac, vlan: params.int("vlan") == 0 ? nil : UInt16(params.int("vlan")),
            allowMACSpoofing: params.bool("allow_mac_spoofing"), bandwidthBitsPerSecond: bandwidth == 0 ? nil : UInt64(bandwidth),
            maxQueues: Int(params.int("max_queues")), linkSpeedBitsPerSecond: UInt64(params.int("link_speed")),
            instance: params.string("instance").isEmpty ? InstanceGUID.derive(device: name) : params.string("instance"))
        guard !params.string("fds").isEmpty else {
            throw PluginError("device '\(name)': netvsp needs a port: fds = \"N[,N...]\"")
        }
        let fds = try QueueFDList.parse(params.string("fds"), device: name)
        return try NetVSPDevice(host: host, name: name, instance: configuration.instance, configuration: configuration,
                                queueFDs: fds, port: nil)
    }
}

/// A stable VMBus instance GUID for a device name (version 4 layout, variant 1).
enum InstanceGUID {
    static func derive(device: String) -> String {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325, b: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in ("veneer-netvsp:" + device).utf8 {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = ((b ^ UInt64(byte)) &* 0x0000_0100_0000_01B3)
            b = b << 7 | b >> 57
        }
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: a >> (8 * $0)) } + (0..<8).map { UInt8(truncatingIfNeeded: b >> (8 * $0)) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        let c = Array(hex)
        return [String(c[0..<8]), String(c[8..<12]), String(c[12..<16]), String(c[16..<20]), String(c[20..<32])].joined(separator: "-")
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: NetVSPDevice.definition) }
