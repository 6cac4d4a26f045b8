import VeneerNet
import VeneerNetSupport
import VeneerPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// `switch = "NAME"`: a TAP port on a Veneer switch through `LinuxBridgeBackend`, one queue per
/// channel the NIC may have.
enum SwitchPort {
    static func attach(switchName: String, interface: String, device: String,
                       configuration: NICConfiguration) throws(PluginError) -> any NetworkPort {
        let name = interface.isEmpty ? defaultInterfaceName(device: device) : interface
        // The VM's name (for the default MAC) is a machine fact known only at start; the port is
        // made now, so it carries the device-derived address the NIC starts with.
        let spec = PortSpec(switchName: switchName, interfaceName: name,
                            mac: configuration.mac ?? DefaultMAC.derive(vmName: "", device: device),
                            vlan: configuration.vlan, allowMACSpoofing: configuration.allowMACSpoofing,
                            bandwidthBitsPerSecond: configuration.bandwidthBitsPerSecond, queues: configuration.maxQueues,
                            mtu: configuration.mtu)
        let port: any NetworkPort
        do { port = try LinuxBridgeBackend().attach(spec) } catch {
            throw PluginError("device '\(device)': switch '\(switchName)': \(error)")
        }
        // netvsc takes no segments larger than the MTU (no RSC here): the TAP may hand netvsp
        // frames that need a checksum finished, never unsegmented TCP.
        if let first = port.queueFDs.first, veneer_tap_set_offload(first, VENEER_TUN_F_CSUM) != 0 {
            port.close()
            throw PluginError("device '\(device)': TAP '\(name)': cannot limit its offloads to checksums (errno \(errno))")
        }
        return port
    }

    /// "vn" + the worker's pid in hex + "." + 4 hex digits of the device id: unique per running
    /// VM NIC, at most 15 bytes.
    static func defaultInterfaceName(device: String) -> String {
        var hash: UInt32 = 0x811C_9DC5
        for byte in device.utf8 { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
        let suffix = String(hash & 0xFFFF, radix: 16)
        return "vn" + String(UInt32(getpid()), radix: 16) + "." + String(repeating: "0", count: 4 - suffix.count) + suffix
    }
}
