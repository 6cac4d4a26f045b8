/// A guest-physical range (Linux `struct gpa_range`): `{u32 byte_count; u32 byte_offset;
/// u64 pfn[]}`, where the number of PFNs is implied by the offset into the first page and the byte
/// count. Used by GPADLs and by GPA-direct packets.
public struct GPARange: Equatable, Sendable {
    public static let headerSize = 8
    public static let pageSize = 4096

    public var byteCount: UInt32
    /// Offset into the first page: below 4096.
    public var byteOffset: UInt32
    public var pfns: [UInt64]

    public init(byteCount: UInt32, byteOffset: UInt32, pfns: [UInt64]) {
        self.byteCount = byteCount
        self.byteOffset = byteOffset
        self.pfns = pfns
    }

    /// Pages spanned by `byteCount` bytes starting `byteOffset` into the first page, or nil when
    /// the count is zero or the offset does not lie in the first page.
    public static func pageCount(byteOffset: UInt32, byteCount: UInt32) -> Int? {
        guard byteCount > 0, byteOffset < UInt32(pageSize) else { return nil }
        return (Int(byteOffset) + Int(byteCount) + pageSize - 1) / pageSize
    }

    /// The header word as GPADL messages carry it: byte_count low, byte_offset high.
    public var headerWord: UInt64 { UInt64(byteCount) | UInt64(byteOffset) << 32 }
    public var words: [UInt64] { [headerWord] + pfns }
    public var encodedSize: Int { Self.headerSize + 8 * pfns.count }

    /// Reads one range, validating byte_count, byte_offset and that every implied PFN is present.
    public init(from r: inout ByteReader) throws(VMBusWireError) {
        byteCount = try r.u32()
        byteOffset = try r.u32()
        guard let pages = Self.pageCount(byteOffset: byteOffset, byteCount: byteCount) else {
            throw .invalidField(structure: "GPARange", field: byteCount == 0 ? "byte_count" : "byte_offset",
                                value: UInt64(byteCount == 0 ? byteCount : byteOffset))
        }
        try r.require(8 * pages)
        pfns = []
        pfns.reserveCapacity(pages)
        for _ in 0..<pages { pfns.append(try r.u64()) }
    }

    public func encode(into w: inout ByteWriter) {
        w.u32(byteCount)
        w.u32(byteOffset)
        for pfn in pfns { w.u64(pfn) }
    }

    /// Parses exactly `count` ranges that together use every word in `words` (the GPADL range
    /// buffer). A range needing more words than remain, or words left over, is an error.
    public static func ranges(count: Int, words: ArraySlice<UInt64>) throws(VMBusWireError) -> [GPARange] {
        var ranges: [GPARange] = []
        var index = words.startIndex
        for _ in 0..<count {
            guard index < words.endIndex else {
                throw .truncated(structure: "GPADL ranges", needed: (index - words.startIndex + 1) * 8, available: words.count * 8)
            }
            let header = words[index]
            let byteCount = UInt32(truncatingIfNeeded: header), byteOffset = UInt32(truncatingIfNeeded: header >> 32)
            guard let pages = pageCount(byteOffset: byteOffset, byteCount: byteCount) else {
                throw .invalidField(structure: "GPADL ranges", field: byteCount == 0 ? "byte_count" : "byte_offset",
                                    value: UInt64(byteCount == 0 ? byteCount : byteOffset))
            }
            guard pages <= words.endIndex - index - 1 else {
                throw .truncated(structure: "GPADL ranges", needed: (index - words.startIndex + 1 + pages) * 8, available: words.count * 8)
            }
            ranges.append(GPARange(byteCount: byteCount, byteOffset: byteOffset, pfns: Array(words[index + 1...index + pages])))
            index += 1 + pages
        }
        guard index == words.endIndex else {
            throw .oversized(structure: "GPADL ranges", maximum: (index - words.startIndex) * 8, actual: words.count * 8)
        }
        return ranges
    }
}

/// What a GPA-direct packet (type 9) carries between its descriptor and its payload:
/// `{u32 reserved; u32 rangecount; gpa_range ranges[]}` from byte 16 of the packet (Linux
/// `struct vmdata_gpa_direct`). The ranges must end at or before the descriptor's data offset.
public struct GPADirectHeader: Equatable, Sendable {
    /// Descriptor plus reserved and rangecount: where the first range starts.
    public static let rangesOffset = PacketDescriptor.size + 8

    public var reserved: UInt32
    public var ranges: [GPARange]

    public init(reserved: UInt32 = 0, ranges: [GPARange]) {
        self.reserved = reserved
        self.ranges = ranges
    }

    /// Decodes from a whole packet (descriptor first). `maxRanges` bounds rangecount before any
    /// range is read.
    public static func decode(packet: [UInt8], descriptor: PacketDescriptor, maxRanges: Int) throws(VMBusWireError) -> GPADirectHeader {
        let end = min(descriptor.dataOffset, packet.count)
        var r = ByteReader(Array(packet.prefix(end)), structure: "GPADirectHeader", offset: PacketDescriptor.size)
        return try decode(from: &r, maxRanges: maxRanges)
    }

    /// Decodes the header alone ({u32 reserved; u32 rangecount; ranges}), as a VSP sees it after
    /// the descriptor. `maxRanges` bounds rangecount before any range is read.
    public static func decode(header: [UInt8], maxRanges: Int) throws(VMBusWireError) -> GPADirectHeader {
        var r = ByteReader(header, structure: "GPADirectHeader")
        return try decode(from: &r, maxRanges: maxRanges)
    }

    private static func decode(from r: inout ByteReader, maxRanges: Int) throws(VMBusWireError) -> GPADirectHeader {
        let reserved = try r.u32()
        let count = try r.u32()
        guard count > 0, count <= UInt32(max(maxRanges, 0)) else {
            throw .invalidField(structure: "GPADirectHeader", field: "rangecount", value: UInt64(count))
        }
        var ranges: [GPARange] = []
        for _ in 0..<count { ranges.append(try GPARange(from: &r)) }
        return GPADirectHeader(reserved: reserved, ranges: ranges)
    }

    public func encode(into w: inout ByteWriter) {
        w.u32(reserved)
        w.u32(UInt32(ranges.count))
        for range in ranges { range.encode(into: &w) }
    }

    /// Bytes this header takes after the descriptor.
    public var encodedSize: Int { 8 + ranges.reduce(0) { $0 + $1.encodedSize } }
}
