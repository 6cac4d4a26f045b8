/// The host side of a VM's network adapter, behind one small interface so the switch technology
/// can change (Linux bridges now, Open vSwitch later) without netvsp knowing.
///
/// A port is a set of queue fds (one per guest queue: netvsp's primary channel and each
/// sub-channel), each a non-blocking, packet-oriented fd carrying one Ethernet frame per
/// read/write, prefixed by a `VirtioNetHeader` (12 bytes, the layout of Linux's
/// `struct virtio_net_hdr_v1`): a TAP opened with IFF_VNET_HDR | IFF_MULTI_QUEUE in production,
/// a SOCK_SEQPACKET socketpair in tests. Frames never carry an 802.1Q tag for the port's own
/// access VLAN: the switch tags and untags.
public protocol NetworkBackend: Sendable {
    /// Creates (or opens) the port on its switch with `queues` queues. The caller owns the port
    /// and closes it when the VM stops.
    func attach(_ spec: PortSpec) throws(NetworkError) -> any NetworkPort
}

public protocol NetworkPort: AnyObject, Sendable {
    var spec: PortSpec { get }
    /// One fd per queue, non-blocking; valid until `close`.
    var queueFDs: [Int32] { get }
    /// Link state as the switch sees it (the TAP's carrier); netvsp reports changes to the guest.
    var linkUp: Bool { get }
    /// Leaves the switch and releases the fds. Idempotent.
    func close()
}

/// Everything a switch needs to know about one VM NIC.
public struct PortSpec: Sendable, Equatable {
    /// The switch (a Linux bridge) this port joins.
    public var switchName: String
    /// The host interface name (a TAP, at most 15 bytes), unique per VM NIC.
    public var interfaceName: String
    public var mac: MACAddress
    /// Access VLAN (1-4094), or nil for an untagged port.
    public var vlan: UInt16?
    /// When false, frames from the guest whose source MAC is not `mac` are dropped (and counted).
    public var allowMACSpoofing: Bool
    /// Cap on guest-to-switch traffic in bits per second, or nil for none.
    public var bandwidthBitsPerSecond: UInt64?
    public var queues: Int
    public var mtu: Int

    public init(switchName: String, interfaceName: String, mac: MACAddress, vlan: UInt16? = nil, allowMACSpoofing: Bool = false,
                bandwidthBitsPerSecond: UInt64? = nil, queues: Int = 1, mtu: Int = 1500) {
        self.switchName = switchName
        self.interfaceName = interfaceName
        self.mac = mac
        self.vlan = vlan
        self.allowMACSpoofing = allowMACSpoofing
        self.bandwidthBitsPerSecond = bandwidthBitsPerSecond
        self.queues = queues
        self.mtu = mtu
    }
}

public struct MACAddress: Sendable, Hashable, CustomStringConvertible {
    public var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        bytes = (b0, b1, b2, b3, b4, b5)
    }

    public var array: [UInt8] { [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5] }

    /// "00:15:5d:12:34:56" (case-insensitive, ':' or '-').
    public init?(_ text: String) {
        let parts = text.split(whereSeparator: { $0 == ":" || $0 == "-" })
        guard parts.count == 6 else { return nil }
        var b: [UInt8] = []
        for p in parts {
            guard p.count == 2, let v = UInt8(p, radix: 16) else { return nil }
            b.append(v)
        }
        self.init(b[0], b[1], b[2], b[3], b[4], b[5])
    }

    public var description: String {
        array.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: ":")
    }

    public static func == (a: MACAddress, b: MACAddress) -> Bool { a.array == b.array }
    public func hash(into hasher: inout Hasher) { hasher.combine(array) }
}

public struct NetworkError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
