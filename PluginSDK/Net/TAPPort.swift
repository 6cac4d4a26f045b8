#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import NetlinkProtocol
import VeneerNetSupport

/// What the host kernel may hand a TAP queue without finishing it first (TUNSETOFFLOAD): frames
/// with a partial checksum, TCP segments up to 64 KiB (TSO), UDP datagrams to fragment (UFO)
/// or segment (USO). netvsp only offers the guest what the TAP took.
public struct TAPOffloads: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let checksum = TAPOffloads(rawValue: VENEER_TUN_F_CSUM)
    public static let tso4 = TAPOffloads(rawValue: VENEER_TUN_F_TSO4)
    public static let tso6 = TAPOffloads(rawValue: VENEER_TUN_F_TSO6)
    public static let tsoECN = TAPOffloads(rawValue: VENEER_TUN_F_TSO_ECN)
    public static let ufo = TAPOffloads(rawValue: VENEER_TUN_F_UFO)
    public static let uso4 = TAPOffloads(rawValue: VENEER_TUN_F_USO4)
    public static let uso6 = TAPOffloads(rawValue: VENEER_TUN_F_USO6)

    /// Tried in order until the kernel accepts one: newer kernels know USO, older ones not even UFO.
    static let preferences: [TAPOffloads] = [
        [.checksum, .tso4, .tso6, .tsoECN, .ufo, .uso4, .uso6],
        [.checksum, .tso4, .tso6, .tsoECN, .ufo],
        [.checksum, .tso4, .tso6, .tsoECN],
        [.checksum],
    ]
}

/// One VM NIC's TAP: a multi-queue TAP with virtio-net headers, a port of its switch's bridge.
/// The TAP is not persistent: the kernel removes it (and so its bridge port) when the last queue
/// fd closes, so a crashed VM leaves nothing behind.
public final class TAPPort: NetworkPort {
    public let spec: PortSpec
    public let offloads: TAPOffloads
    private let fds: Mutex<[Int32]>

    init(spec: PortSpec, fds: [Int32], offloads: TAPOffloads) {
        self.spec = spec
        self.offloads = offloads
        self.fds = Mutex(fds)
    }

    deinit { close() }

    public var queueFDs: [Int32] { fds.withLock { $0 } }

    /// The TAP is up and has carrier (IFF_UP and IFF_RUNNING).
    public var linkUp: Bool {
        let flags = veneer_interface_flags(spec.interfaceName)
        guard flags >= 0 else { return false }
        let needed = Int32(Netlink.InterfaceFlags.up | Netlink.InterfaceFlags.running)
        return flags & needed == needed
    }

    public func close() {
        let open = fds.withLock { fds in
            defer { fds = [] }
            return fds
        }
        for fd in open { Glibc.close(fd) }
    }
}
