/// One command of the BIOS linker/loader script ("etc/table-loader") that SeaBIOS and OVMF
/// execute to place ACPI tables wherever their own memory layout has room: 128 bytes, a 32-bit
/// little-endian command number, then the command's fields, zero-padded. File names are fw_cfg
/// file names, NUL-terminated within 56 bytes.
enum LinkerLoaderCommand: Equatable {
    /// Where firmware may put an allocated file.
    enum Zone: UInt8 {
        /// Anywhere in 32-bit memory.
        case high = 1
        /// The 0xF0000-0xFFFFF segment (the RSDP, which OSes search for there).
        case fSegment = 2
    }

    /// Load the file's contents into memory `alignment`-aligned in `zone`.
    case allocate(file: String, alignment: UInt32, zone: Zone)
    /// Add the address `source` was loaded at to the `size`-byte (1, 2, 4 or 8) little-endian
    /// value at `offset` in `destination` (which held an offset into `source`).
    case addPointer(destination: String, source: String, offset: UInt32, size: UInt8)
    /// Set the byte at `offset` in `file` (zero until then) so that bytes start..<start+length sum to 0.
    case addChecksum(file: String, offset: UInt32, start: UInt32, length: UInt32)

    static let size = 128
    static let fileNameSize = 56

    var encoded: [UInt8] {
        var bytes: [UInt8]
        switch self {
        case .allocate(let file, let alignment, let zone):
            bytes = littleEndian(UInt32(1)) + Self.name(file) + littleEndian(alignment) + [zone.rawValue]
        case .addPointer(let destination, let source, let offset, let size):
            bytes = littleEndian(UInt32(2)) + Self.name(destination) + Self.name(source) + littleEndian(offset) + [size]
        case .addChecksum(let file, let offset, let start, let length):
            bytes = littleEndian(UInt32(3)) + Self.name(file) + littleEndian(offset) + littleEndian(start) + littleEndian(length)
        }
        return bytes + [UInt8](repeating: 0, count: Self.size - bytes.count)
    }

    /// The name in its 56-byte field; callers pass the fixed ASCII names below, always shorter.
    private static func name(_ text: String) -> [UInt8] {
        let utf8 = Array(text.utf8.prefix(fileNameSize - 1))
        return utf8 + [UInt8](repeating: 0, count: fileNameSize - utf8.count)
    }
}
