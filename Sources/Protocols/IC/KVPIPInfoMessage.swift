/// The IP-info KVP messages (GET_IP_INFO 4, SET_IP_INFO 5), Linux `hv_kvp_ip_msg` (7428 bytes
/// packed): a 2-byte header `{u8 operation; u8 pool}`, then `hv_kvp_ipaddr_value`:
///
/// | offset | size | field |
/// |---|---|---|
/// | 2 | 256 | `adapter_id`: u16[128] (GET: the NIC's MAC text; SET: the netvsc instance GUID) |
/// | 258 | 1 | `addr_family` (0 none, 1 IPv4, 2 IPv6, 3 both) |
/// | 259 | 1 | `dhcp_enabled` |
/// | 260 | 2048 | `ip_addr`: u16[1024], `;`-separated |
/// | 2308 | 2048 | `sub_net`: u16[1024] |
/// | 4356 | 1024 | `gate_way`: u16[512] |
/// | 5380 | 2048 | `dns_addr`: u16[1024] |
public struct KVPIPInfoMessage: Hashable, Sendable {
    public static let size = 7428
    public static let adapterUnits = 128
    public static let addressUnits = 1024
    public static let gatewayUnits = 512

    public var operation: KVPOperation
    public var pool: KVPPool
    public var adapterID: [UInt16]
    public var addressFamily: UInt8
    public var dhcpEnabled: Bool
    public var addresses: [UInt16]
    public var subnets: [UInt16]
    public var gateways: [UInt16]
    public var dnsServers: [UInt16]

    /// Nil when a string does not fit its field with a NUL or `operation` is not an IP-info one.
    public init?(operation: KVPOperation, pool: KVPPool = .external, adapterID: [UInt16], addressFamily: UInt8 = 0,
                 dhcpEnabled: Bool = false, addresses: [UInt16] = [], subnets: [UInt16] = [], gateways: [UInt16] = [],
                 dnsServers: [UInt16] = []) {
        guard operation == .getIPInfo || operation == .setIPInfo,
              adapterID.count < Self.adapterUnits, addresses.count < Self.addressUnits, subnets.count < Self.addressUnits,
              gateways.count < Self.gatewayUnits, dnsServers.count < Self.addressUnits else { return nil }
        self.operation = operation
        self.pool = pool
        self.adapterID = adapterID
        self.addressFamily = addressFamily
        self.dhcpEnabled = dhcpEnabled
        self.addresses = addresses
        self.subnets = subnets
        self.gateways = gateways
        self.dnsServers = dnsServers
    }

    public static func decode(_ bytes: ArraySlice<UInt8>) throws(ICWireError) -> KVPIPInfoMessage {
        var r = ICByteReader(bytes, structure: "KVP IP info")
        try r.require(size)
        let operation = KVPOperation(rawValue: try r.u8())
        let pool = KVPPool(rawValue: try r.u8())
        func text(_ units: Int) throws(ICWireError) -> [UInt16] {
            var out: [UInt16] = []
            var ended = false
            for _ in 0..<units {
                let unit = try r.u16()
                if unit == 0 { ended = true }
                if !ended { out.append(unit) }
            }
            return Array(out.prefix(units - 1))
        }
        let adapter = try text(adapterUnits)
        let family = try r.u8()
        let dhcp = try r.u8()
        let addresses = try text(addressUnits), subnets = try text(addressUnits)
        let gateways = try text(gatewayUnits), dns = try text(addressUnits)
        guard let message = KVPIPInfoMessage(operation: operation, pool: pool, adapterID: adapter, addressFamily: family,
                                             dhcpEnabled: dhcp != 0, addresses: addresses, subnets: subnets,
                                             gateways: gateways, dnsServers: dns) else {
            throw .invalidField(structure: "KVP IP info", field: "operation", value: UInt64(operation.rawValue))
        }
        return message
    }

    public func encode() -> [UInt8] {
        var w = ICByteWriter(capacity: Self.size)
        w.u8(operation.rawValue)
        w.u8(pool.rawValue)
        func text(_ units: [UInt16], _ capacity: Int) {
            for unit in units { w.u16(unit) }
            w.zeros(2 * (capacity - units.count))
        }
        text(adapterID, Self.adapterUnits)
        w.u8(addressFamily)
        w.u8(dhcpEnabled ? 1 : 0)
        text(addresses, Self.addressUnits)
        text(subnets, Self.addressUnits)
        text(gateways, Self.gatewayUnits)
        text(dnsServers, Self.addressUnits)
        return w.bytes
    }
}
