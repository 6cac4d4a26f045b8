/// Fixed places and sizes of the VHDX format ([MS-VHDX] 2.1): the first megabyte holds the
/// file identifier, two headers and two region tables, 64 KiB each; everything else (log, BAT,
/// metadata, payload) sits at 1 MiB multiples the region table and header name.
public enum VHDXLayout {
    public static let kiB: UInt64 = 1024
    public static let miB: UInt64 = 1024 * 1024
    public static let fileIdentifierOffset: UInt64 = 0
    public static let headerOffsets: [UInt64] = [64 * kiB, 128 * kiB]
    public static let regionTableOffsets: [UInt64] = [192 * kiB, 256 * kiB]
    /// Header and region table slots are 64 KiB; a header's checksum covers its first 4 KiB.
    public static let structureSlotSize = 64 * 1024
    /// Where the first object (log, BAT, metadata) may start.
    public static let firstObjectOffset: UInt64 = miB
    /// The log's unit: entries and descriptors are whole 4 KiB sectors.
    public static let logSectorSize = 4096
    /// Payload and sector bitmap blocks start at 1 MiB multiples (the BAT stores MiB numbers).
    public static let blockAlignment: UInt64 = miB
    /// A sector bitmap block: one bit per logical sector of `chunkRatio` payload blocks.
    public static let sectorBitmapBlockSize: UInt64 = miB
    /// 2^23 sectors per chunk, whatever the sector size.
    public static let sectorsPerChunk: UInt64 = 1 << 23
    /// The spec's maximum virtual size, 64 TiB.
    public static let maximumVirtualSize: UInt64 = 64 << 40
}

/// A structure that failed to decode: which one and why (the image layer adds the file name).
public struct VHDXFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public var structure: String
    public var message: String
    public init(_ structure: String, _ message: String) {
        self.structure = structure
        self.message = message
    }
    public var description: String { "\(structure): \(message)" }
}

/// The file type identifier at offset 0: "vhdxfile" and the creator's name (UTF-16LE).
public struct VHDXFileIdentifier: Sendable, Equatable {
    public static let signature: UInt64 = 0x656C_6966_7864_6876  // "vhdxfile"
    public static let size = 8 + 512
    public var creator: String

    public init(creator: String) { self.creator = creator }

    public static func decode(_ bytes: [UInt8]) throws(VHDXFormatError) -> VHDXFileIdentifier {
        guard bytes.u64(at: 0) == signature else { throw VHDXFormatError("file identifier", "no \"vhdxfile\" signature at offset 0") }
        return VHDXFileIdentifier(creator: UTF16LE.decode(bytes.slice(8, 512)).prefix { $0 != "\0" }.description)
    }

    public func encode() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b.putU64(Self.signature, at: 0)
        b.putBytes(Array(UTF16LE.encode(creator).prefix(510)), at: 8)
        return b
    }
}

/// UTF-16LE text (creator, parent locator keys and values).
public enum UTF16LE {
    public static func encode(_ text: String) -> [UInt8] { text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }
    public static func decode(_ bytes: [UInt8]) -> String {
        let units = stride(from: 0, to: bytes.count - 1, by: 2).map { UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8 }
        return String(decoding: units, as: UTF16.self)
    }
}
