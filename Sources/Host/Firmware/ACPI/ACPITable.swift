/// The identity every table Veneer generates carries, and the 36-byte System Description Table
/// header (ACPI 6.5, 5.2.6) with its checksum.
public enum ACPITable {
    public static let oemID = "VENEER"
    public static let oemTableID = "VENEERVM"
    public static let oemRevision: UInt32 = 1
    /// Creator (for the DSDT: the "compiler") id and revision: Veneer's own table generator.
    public static let creatorID = "VNER"
    public static let creatorRevision: UInt32 = 1

    public static let headerSize = 36
    public static let checksumOffset = 9

    /// `body` behind a header whose length covers both and whose checksum makes the table sum to 0.
    static func assemble(signature: String, revision: UInt8, body: [UInt8]) -> [UInt8] {
        var bytes = fixedASCII(signature, size: 4)
        bytes += littleEndian(UInt32(headerSize + body.count))
        bytes += [revision, 0]
        bytes += fixedASCII(oemID, size: 6)
        bytes += fixedASCII(oemTableID, size: 8)
        bytes += littleEndian(oemRevision)
        bytes += fixedASCII(creatorID, size: 4)
        bytes += littleEndian(creatorRevision)
        bytes += body
        bytes[checksumOffset] = checksum(bytes)
        return bytes
    }

    /// The byte that makes the 8-bit sum of `bytes` (with this byte in place of a 0) zero.
    static func checksum<C: Collection<UInt8>>(_ bytes: C) -> UInt8 {
        0 &- bytes.reduce(0, &+)
    }

    /// ASCII identifiers are fixed-width fields: truncated or padded with `pad`.
    static func fixedASCII(_ text: String, size: Int, pad: UInt8 = 0) -> [UInt8] {
        let bytes = Array(text.utf8.prefix(size))
        return bytes + Array(repeating: pad, count: size - bytes.count)
    }
}
