/// The Root System Description Pointer (ACPI 6.5, 5.2.5.3), revision 2: the 20-byte ACPI 1.0 part
/// with its own checksum, then the length, the XSDT address and an extended checksum over all 36
/// bytes. There is no RSDT (RsdtAddress 0): OSes that understand revision 2 use the XSDT.
enum RSDP {
    static let size = 36
    static let revision: UInt8 = 2
    static let signature = "RSD PTR "
    /// OSes scan for the RSDP on 16-byte boundaries.
    static let alignment: UInt64 = 16

    static func build(xsdtAddress: UInt64) -> [UInt8] {
        var bytes = ACPITable.fixedASCII(signature, size: 8)
        bytes.append(0) // checksum of bytes 0-19
        bytes += ACPITable.fixedASCII(ACPITable.oemID, size: 6)
        bytes.append(revision)
        bytes += littleEndian(UInt32(0))
        bytes += littleEndian(UInt32(size))
        bytes += littleEndian(xsdtAddress)
        bytes += [0, 0, 0, 0] // extended checksum, reserved
        bytes[8] = ACPITable.checksum(bytes[0..<20])
        bytes[32] = ACPITable.checksum(bytes)
        return bytes
    }
}
