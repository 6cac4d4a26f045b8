import VeneerNet
import VeneerPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// The NIC's settings from its config table, checked.
struct NICConfiguration: Sendable, Equatable {
    /// The guest's MTU (without the Ethernet header).
    var mtu: Int
    /// nil: derived at start from the VM name and the device name.
    var mac: MACAddress?
    /// Access VLAN of the port (1-4094) or nil.
    var vlan: UInt16?
    var allowMACSpoofing: Bool
    var bandwidthBitsPerSecond: UInt64?
    var maxQueues: Int
    /// Reported to the guest (GEN_LINK_SPEED), bits per second.
    var linkSpeedBitsPerSecond: UInt64
    var instance: String

    /// Largest frame on the wire the guest may send or receive (MTU + Ethernet header + a tag).
    var maxFrame: Int { mtu + FrameHeaders.ethernetSize + 4 }
    /// Largest LSO send accepted (what the offload capabilities announce).
    static let lsoMaxSize = 62780
    static let lsoMinSegments: UInt32 = 2
}

/// A stable MAC for a NIC nobody gave one: Microsoft's Hyper-V prefix 00:15:5D and 24 bits of an
/// FNV-1a hash of "vm name/device name", so the same VM's same NIC keeps its address across boots.
enum DefaultMAC {
    static func derive(vmName: String, device: String) -> MACAddress {
        var hash: UInt32 = 0x811C_9DC5
        for byte in Array((vmName + "/" + device).utf8) {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return MACAddress(0x00, 0x15, 0x5D, UInt8(truncatingIfNeeded: hash >> 16), UInt8(truncatingIfNeeded: hash >> 8),
                          UInt8(truncatingIfNeeded: hash))
    }
}

/// `fds = "3,4"`: pre-opened queue fds (a TAP's queues, or a socketpair's ends in tests).
enum QueueFDList {
    static func parse(_ text: String, device: String) throws(PluginError) -> [Int32] {
        var fds: [Int32] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = part.trimmingCharacters(in: " ")
            guard let fd = Int32(trimmed), fd >= 0 else {
                throw PluginError("device '\(device)': fds: '\(trimmed)' is not a file descriptor number")
            }
            guard !fds.contains(fd) else { throw PluginError("device '\(device)': fds: \(fd) given twice") }
            fds.append(fd)
        }
        guard !fds.isEmpty, fds.count <= 64 else { throw PluginError("device '\(device)': fds: between 1 and 64 queue fds") }
        // The data paths never block: each fd is switched to non-blocking here.
        for fd in fds {
            let flags = fcntl(fd, F_GETFL)
            guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
                throw PluginError("device '\(device)': fds: \(fd) is not an open file descriptor")
            }
        }
        return fds
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
