/// The region table ([MS-VHDX] 2.2.3): a 64 KiB checksummed table naming where the BAT and the
/// metadata region live. Entries marked required must be understood by a reader.
public struct VHDXRegionTable: Sendable, Equatable {
    public static let signature: UInt32 = 0x6967_6572  // "regi"
    public static let size = 64 * 1024
    public static let headerSize = 16
    public static let entrySize = 32
    public static let maximumEntries = 2047
    public static let checksumOffset = 4

    public static let batGUID = VHDXGUID(0x2DC27766, 0xF623, 0x4200, [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08])  // 2DC27766-F623-4200-9D64-115E9BFD4A08
    public static let metadataGUID = VHDXGUID(0x8B7CA206, 0x4790, 0x4B9A, [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E])  // 8B7CA206-4790-4B9A-B8FE-575F050F886E

    public struct Entry: Sendable, Equatable {
        public var guid: VHDXGUID
        public var fileOffset: UInt64
        public var length: UInt32
        public var required: Bool
        public init(guid: VHDXGUID, fileOffset: UInt64, length: UInt32, required: Bool) {
            self.guid = guid
            self.fileOffset = fileOffset
            self.length = length
            self.required = required
        }
    }

    public var entries: [Entry]
    public init(entries: [Entry]) { self.entries = entries }

    public static func decode(_ bytes: [UInt8]) throws(VHDXFormatError) -> VHDXRegionTable {
        guard bytes.count >= size else { throw VHDXFormatError("region table", "truncated") }
        let b = Array(bytes.prefix(size))
        guard b.u32(at: 0) == signature else { throw VHDXFormatError("region table", "no \"regi\" signature") }
        guard b.u32(at: checksumOffset) == CRC32C.checksum(b, zeroingFieldAt: checksumOffset) else {
            throw VHDXFormatError("region table", "checksum mismatch")
        }
        let count = Int(b.u32(at: 8))
        guard count <= maximumEntries else { throw VHDXFormatError("region table", "\(count) entries (at most \(maximumEntries))") }
        let entries = (0..<count).map { i in
            let at = headerSize + i * entrySize
            return Entry(guid: VHDXGUID(bytes: b.slice(at, 16)), fileOffset: b.u64(at: at + 16),
                         length: b.u32(at: at + 24), required: b.u32(at: at + 28) & 1 != 0)
        }
        return VHDXRegionTable(entries: entries)
    }

    public func encode() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b.putU32(Self.signature, at: 0)
        b.putU32(UInt32(entries.count), at: 8)
        for (i, e) in entries.enumerated() {
            let at = Self.headerSize + i * Self.entrySize
            b.putBytes(e.guid.bytes, at: at)
            b.putU64(e.fileOffset, at: at + 16)
            b.putU32(e.length, at: at + 24)
            b.putU32(e.required ? 1 : 0, at: at + 28)
        }
        CRC32C.seal(&b, fieldAt: Self.checksumOffset)
        return b
    }
}
