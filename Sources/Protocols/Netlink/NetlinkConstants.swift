/// Numbers from Linux's uapi headers (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h,
/// linux/if_addr.h, linux/if_bridge.h, linux/veth.h). They are kernel ABI: fixed forever.
public enum Netlink {
    public static let headerSize = 16
    /// Netlink messages and attributes are padded to 4 bytes.
    public static let alignment = 4

    public static func aligned(_ n: Int) -> Int { (n + alignment - 1) & ~(alignment - 1) }

    public enum MessageType {
        public static let noop: UInt16 = 1
        public static let error: UInt16 = 2
        public static let done: UInt16 = 3
        public static let newLink: UInt16 = 16
        public static let deleteLink: UInt16 = 17
        public static let getLink: UInt16 = 18
        public static let setLink: UInt16 = 19
        public static let newAddress: UInt16 = 20
        public static let deleteAddress: UInt16 = 21
        public static let getAddress: UInt16 = 22
    }

    public enum Flags {
        public static let request: UInt16 = 0x1
        public static let multi: UInt16 = 0x2
        public static let ack: UInt16 = 0x4
        public static let dumpInterrupted: UInt16 = 0x10
        /// GET: root | match.
        public static let dump: UInt16 = 0x300
        /// NEW: fail if the object exists.
        public static let exclusive: UInt16 = 0x200
        public static let create: UInt16 = 0x400
        /// On NLMSG_ERROR: the echoed request is only its header; TLVs (extended ack) follow.
        public static let capped: UInt16 = 0x100
        public static let ackTLVs: UInt16 = 0x200
    }

    /// Extended-ack attributes after an NLMSG_ERROR's echoed request.
    public enum ErrorAttribute {
        public static let message: UInt16 = 1
    }

    /// Attributes of an RTM_*LINK message (IFLA_*).
    public enum LinkAttribute {
        public static let address: UInt16 = 1
        public static let ifName: UInt16 = 3
        public static let mtu: UInt16 = 4
        public static let master: UInt16 = 10
        public static let operState: UInt16 = 16
        public static let linkInfo: UInt16 = 18
        public static let ifAlias: UInt16 = 20
        public static let afSpec: UInt16 = 26
        public static let extMask: UInt16 = 29
        public static let carrier: UInt16 = 33
    }

    /// Inside IFLA_LINKINFO (IFLA_INFO_*).
    public enum LinkInfoAttribute {
        public static let kind: UInt16 = 1
        public static let data: UInt16 = 2
    }

    /// Inside IFLA_INFO_DATA of a bridge (IFLA_BR_*).
    public enum BridgeAttribute {
        public static let vlanFiltering: UInt16 = 7
    }

    /// Inside IFLA_INFO_DATA of a veth (VETH_INFO_*): the peer is an ifinfomsg plus IFLA_* attributes.
    public enum VethAttribute {
        public static let peer: UInt16 = 1
    }

    /// Inside IFLA_AF_SPEC of an AF_BRIDGE message (IFLA_BRIDGE_*).
    public enum BridgeSpecAttribute {
        public static let vlanInfo: UInt16 = 2
    }

    /// IFLA_EXT_MASK bits (RTEXT_FILTER_*).
    public enum ExtMask {
        public static let bridgeVLAN: UInt32 = 1 << 1
    }

    /// Attributes of an RTM_*ADDR message (IFA_*).
    public enum AddressAttribute {
        public static let address: UInt16 = 1
        public static let local: UInt16 = 2
        public static let broadcast: UInt16 = 4
    }

    public enum Family {
        public static let unspecified: UInt8 = 0
        public static let inet: UInt8 = 2
        public static let bridge: UInt8 = 7
        public static let inet6: UInt8 = 10
    }

    /// net_device flags (IFF_*) in ifinfomsg.
    public enum InterfaceFlags {
        public static let up: UInt32 = 0x1
        public static let running: UInt32 = 0x40
        public static let lowerUp: UInt32 = 0x10000
    }

    /// IFLA_OPERSTATE values (RFC 2863).
    public enum OperState {
        public static let up: UInt8 = 6
    }

    /// The nla_type bits that are flags, not the type.
    static let attributeTypeMask: UInt16 = 0x3fff
}
