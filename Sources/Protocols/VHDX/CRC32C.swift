/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every VHDX header,
/// region table and log entry. Table-driven: these structures are at most 64 KiB.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { (index: Int) -> UInt32 in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    public static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// The checksum of `bytes` as VHDX defines it: computed with the 4-byte checksum field at
    /// `field` taken as zero (the field itself is whatever the structure holds).
    public static func checksum(_ bytes: [UInt8], zeroingFieldAt field: Int) -> UInt32 {
        var copy = bytes
        if field >= 0, field + 4 <= copy.count { for i in field..<field + 4 { copy[i] = 0 } }
        return checksum(copy)
    }

    /// Stores the checksum of `bytes` (field zeroed) into its field at `field`.
    public static func seal(_ bytes: inout [UInt8], fieldAt field: Int) {
        for i in field..<field + 4 { bytes[i] = 0 }
        bytes.putU32(checksum(bytes), at: field)
    }
}
