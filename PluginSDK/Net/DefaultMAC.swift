extension MACAddress {
    /// Hyper-V's organizationally unique identifier; unicast and globally administered.
    public static let hyperVPrefix: (UInt8, UInt8, UInt8) = (0x00, 0x15, 0x5d)

    /// The MAC a VM NIC gets when its config names none: the Hyper-V OUI and 24 bits of a
    /// 64-bit FNV-1a hash of the VM name and NIC index, so it is the same on every start and
    /// differs between the NICs of one VM. Never multicast (the OUI's low bit is 0).
    public static func derived(vmName: String, nicIndex: Int) -> MACAddress {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        for byte in vmName.utf8 { mix(byte) }
        mix(0)  // "vm1" + 10 and "vm11" + 0 must differ
        var index = UInt64(truncatingIfNeeded: nicIndex)
        for _ in 0..<8 {
            mix(UInt8(truncatingIfNeeded: index))
            index >>= 8
        }
        // Fold the high half in so all 64 bits count.
        let folded = hash ^ (hash >> 32)
        let p = hyperVPrefix
        return MACAddress(p.0, p.1, p.2, UInt8(truncatingIfNeeded: folded >> 16), UInt8(truncatingIfNeeded: folded >> 8), UInt8(truncatingIfNeeded: folded))
    }
}
