/// The Extended System Description Table (ACPI 6.5, 5.2.8): 64-bit addresses of the other
/// tables (the FADT first, by convention; the DSDT and FACS are reached through the FADT).
enum XSDT {
    static let revision: UInt8 = 1

    static func build(entries: [UInt64]) -> [UInt8] {
        ACPITable.assemble(signature: "XSDT", revision: revision, body: entries.flatMap { littleEndian($0) })
    }
}
