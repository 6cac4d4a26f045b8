/// The Firmware ACPI Control Structure (ACPI 6.5, 5.2.10): the global lock and waking vector the
/// OS shares with firmware. No checksum; it must be 64-byte aligned, and since the OS writes it,
/// it belongs in ACPI NVS memory rather than reclaimable table memory.
enum FACS {
    static let size = 64
    static let alignment: UInt64 = 64
    static let version: UInt8 = 2

    static func build() -> [UInt8] {
        var bytes = ACPITable.fixedASCII("FACS", size: 4)
        bytes += littleEndian(UInt32(size))
        bytes += littleEndian(UInt32(0)) // hardware signature: a resumed OS compares it; there is no S4
        bytes += littleEndian(UInt32(0)) // firmware waking vector
        bytes += littleEndian(UInt32(0)) // global lock
        bytes += littleEndian(UInt32(0)) // flags: no S4BIOS, no 64-bit wake
        bytes += littleEndian(UInt64(0)) // X firmware waking vector
        bytes.append(version)
        bytes += [0, 0, 0]
        bytes += littleEndian(UInt32(0)) // OSPM flags
        bytes += Array(repeating: 0, count: 24)
        return bytes
    }
}
