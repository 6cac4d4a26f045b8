/// The metadata region's table ([MS-VHDX] 2.6.1): a 64 KiB table at the region's start whose
/// entries point (relative to the region) at items such as the block size and virtual size.
public struct VHDXMetadataTable: Sendable, Equatable {
    public static let signature: UInt64 = 0x6174_6164_6174_656D  // "metadata"
    public static let size = 64 * 1024
    public static let headerSize = 32
    public static let entrySize = 32
    public static let maximumEntries = 2047

    public struct Entry: Sendable, Equatable {
        public var itemID: VHDXGUID
        /// From the start of the metadata region; at least 64 KiB unless `length` is zero.
        public var offset: UInt32
        public var length: UInt32
        public var isUser: Bool
        public var isVirtualDisk: Bool
        public var isRequired: Bool
        public init(itemID: VHDXGUID, offset: UInt32, length: UInt32, isUser: Bool = false, isVirtualDisk: Bool, isRequired: Bool) {
            self.itemID = itemID
            self.offset = offset
            self.length = length
            self.isUser = isUser
            self.isVirtualDisk = isVirtualDisk
            self.isRequired = isRequired
        }
    }

    public var entries: [Entry]
    public init(entries: [Entry]) { self.entries = entries }

    public static func decode(_ bytes: [UInt8]) throws(VHDXFormatError) -> VHDXMetadataTable {
        guard bytes.count >= size else { throw VHDXFormatError("metadata table", "truncated") }
        guard bytes.u64(at: 0) == signature else { throw VHDXFormatError("metadata table", "no \"metadata\" signature") }
        let count = Int(bytes.u16(at: 10))
        guard count <= maximumEntries else { throw VHDXFormatError("metadata table", "\(count) entries (at most \(maximumEntries))") }
        return VHDXMetadataTable(entries: (0..<count).map { i in
            let at = headerSize + i * entrySize
            let flags = bytes.u32(at: at + 24)
            return Entry(itemID: VHDXGUID(bytes: bytes.slice(at, 16)), offset: bytes.u32(at: at + 16), length: bytes.u32(at: at + 20),
                         isUser: flags & 1 != 0, isVirtualDisk: flags & 2 != 0, isRequired: flags & 4 != 0)
        })
    }

    public func encode() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b.putU64(Self.signature, at: 0)
        b.putU16(UInt16(entries.count), at: 10)
        for (i, e) in entries.enumerated() {
            let at = Self.headerSize + i * Self.entrySize
            b.putBytes(e.itemID.bytes, at: at)
            b.putU32(e.offset, at: at + 16)
            b.putU32(e.length, at: at + 20)
            b.putU32((e.isUser ? 1 : 0) | (e.isVirtualDisk ? 2 : 0) | (e.isRequired ? 4 : 0), at: at + 24)
        }
        return b
    }
}

/// The system metadata items a reader must know ([MS-VHDX] 2.6.2).
public enum VHDXMetadataItem {
    public static let fileParameters = VHDXGUID(0xCAA16737, 0xFA36, 0x4D43, [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B])  // CAA16737-FA36-4D43-B3B6-33F0AA44E76B
    public static let virtualDiskSize = VHDXGUID(0x2FA54224, 0xCD1B, 0x4876, [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8])  // 2FA54224-CD1B-4876-B211-5DBED83BF4B8
    public static let page83Data = VHDXGUID(0xBECA12AB, 0xB2E6, 0x4523, [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46])  // BECA12AB-B2E6-4523-93EF-C309E000C746
    public static let logicalSectorSize = VHDXGUID(0x8141BF1D, 0xA96F, 0x4709, [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F])  // 8141BF1D-A96F-4709-BA47-F233A8FAAB5F
    public static let physicalSectorSize = VHDXGUID(0xCDA348C7, 0x445D, 0x4471, [0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56])  // CDA348C7-445D-4471-9CC9-E9885251C556
    public static let parentLocator = VHDXGUID(0xA8D35F2D, 0xB30B, 0x454D, [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C])  // A8D35F2D-B30B-454D-ABF7-D3D84834AB0C

    public static func name(_ id: VHDXGUID) -> String? {
        switch id {
        case fileParameters: "file parameters"
        case virtualDiskSize: "virtual disk size"
        case page83Data: "page 83 data"
        case logicalSectorSize: "logical sector size"
        case physicalSectorSize: "physical sector size"
        case parentLocator: "parent locator"
        default: nil
        }
    }
}

/// The file parameters item: block size and the two flags.
public struct VHDXFileParameters: Sendable, Equatable {
    public static let size = 8
    public var blockSize: UInt32
    /// Set for fixed disks: blocks must never become NOT_PRESENT.
    public var leaveBlocksAllocated: Bool
    public var hasParent: Bool

    public init(blockSize: UInt32, leaveBlocksAllocated: Bool, hasParent: Bool) {
        self.blockSize = blockSize
        self.leaveBlocksAllocated = leaveBlocksAllocated
        self.hasParent = hasParent
    }

    public static func decode(_ bytes: [UInt8]) -> VHDXFileParameters {
        let flags = bytes.u32(at: 4)
        return VHDXFileParameters(blockSize: bytes.u32(at: 0), leaveBlocksAllocated: flags & 1 != 0, hasParent: flags & 2 != 0)
    }

    public func encode() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b.putU32(blockSize, at: 0)
        b.putU32((leaveBlocksAllocated ? 1 : 0) | (hasParent ? 2 : 0), at: 4)
        return b
    }
}

/// The parent locator item ([MS-VHDX] 2.6.2.6): a locator type GUID and UTF-16LE key/value
/// pairs (parent_linkage, relative_path, volume_path, absolute_win32_path), offsets relative
/// to the item's start.
public struct VHDXParentLocator: Sendable, Equatable {
    public static let vhdxLocatorType = VHDXGUID(0xB04AEFB7, 0xD19E, 0x4A81, [0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13])  // B04AEFB7-D19E-4A81-B789-25B8E9445913
    public static let headerSize = 20
    public static let entrySize = 12

    public var locatorType: VHDXGUID
    /// In file order; keys are unique.
    public var entries: [(key: String, value: String)]

    public init(locatorType: VHDXGUID = vhdxLocatorType, entries: [(key: String, value: String)]) {
        self.locatorType = locatorType
        self.entries = entries
    }

    public static func == (a: VHDXParentLocator, b: VHDXParentLocator) -> Bool {
        a.locatorType == b.locatorType && a.entries.map(\.key) == b.entries.map(\.key) && a.entries.map(\.value) == b.entries.map(\.value)
    }

    public subscript(key: String) -> String? { entries.first { $0.key == key }?.value }

    public static func decode(_ bytes: [UInt8]) throws(VHDXFormatError) -> VHDXParentLocator {
        guard bytes.count >= headerSize else { throw VHDXFormatError("parent locator", "truncated (\(bytes.count) bytes)") }
        let count = Int(bytes.u16(at: 18))
        guard headerSize + count * entrySize <= bytes.count else {
            throw VHDXFormatError("parent locator", "\(count) entries do not fit in \(bytes.count) bytes")
        }
        var entries: [(key: String, value: String)] = []
        for i in 0..<count {
            let at = headerSize + i * entrySize
            let keyOffset = Int(bytes.u32(at: at)), valueOffset = Int(bytes.u32(at: at + 4))
            let keyLength = Int(bytes.u16(at: at + 8)), valueLength = Int(bytes.u16(at: at + 10))
            guard keyLength > 0, valueLength > 0, keyOffset + keyLength <= bytes.count, valueOffset + valueLength <= bytes.count else {
                throw VHDXFormatError("parent locator", "entry \(i) points outside the item")
            }
            let key = UTF16LE.decode(bytes.slice(keyOffset, keyLength))
            guard !entries.contains(where: { $0.key == key }) else { throw VHDXFormatError("parent locator", "key \"\(key)\" appears twice") }
            entries.append((key, UTF16LE.decode(bytes.slice(valueOffset, valueLength))))
        }
        return VHDXParentLocator(locatorType: VHDXGUID(bytes: bytes.slice(0, 16)), entries: entries)
    }

    public func encode() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.headerSize + entries.count * Self.entrySize)
        b.putBytes(locatorType.bytes, at: 0)
        b.putU16(UInt16(entries.count), at: 18)
        for (i, e) in entries.enumerated() {
            let key = UTF16LE.encode(e.key), value = UTF16LE.encode(e.value)
            let at = Self.headerSize + i * Self.entrySize
            b.putU32(UInt32(b.count), at: at)
            b.putU16(UInt16(key.count), at: at + 8)
            b += key
            b.putU32(UInt32(b.count), at: at + 4)
            b.putU16(UInt16(value.count), at: at + 10)
            b += value
        }
        return b
    }
}
