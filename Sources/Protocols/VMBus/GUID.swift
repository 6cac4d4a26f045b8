/// A Microsoft GUID as VMBus carries it: `data1`, `data2`, `data3` little-endian, then `data4` as
/// eight bytes in order ("mixed-endian"). The text form is the usual
/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, where the last two groups are `data4`.
public struct GUID: Hashable, Sendable, CustomStringConvertible {
    public static let wireSize = 16
    public static let zero = GUID(0, 0, 0, 0)

    public var data1: UInt32
    public var data2: UInt16
    public var data3: UInt16
    /// The eight `data4` bytes, first byte most significant (as the text form reads).
    public var data4: UInt64

    public init(_ data1: UInt32, _ data2: UInt16, _ data3: UInt16, _ data4: UInt64) {
        self.data1 = data1
        self.data2 = data2
        self.data3 = data3
        self.data4 = data4
    }

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, optionally in braces, any letter case.
    public init?(_ text: String) {
        var body = Substring(text)
        if body.first == "{" && body.last == "}" { body = body.dropFirst().dropLast() }
        let groups = body.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.count == 5, groups.map(\.count) == [8, 4, 4, 4, 12],
              let d1 = UInt32(groups[0], radix: 16), let d2 = UInt16(groups[1], radix: 16),
              let d3 = UInt16(groups[2], radix: 16), let d4a = UInt64(groups[3], radix: 16),
              let d4b = UInt64(groups[4], radix: 16),
              groups.allSatisfy({ $0.allSatisfy(\.isHexDigit) })
        else { return nil }
        self.init(d1, d2, d3, d4a << 48 | d4b)
    }

    /// Decodes the 16-byte wire form.
    public static func decode(_ bytes: [UInt8]) throws(VMBusWireError) -> GUID {
        var reader = ByteReader(bytes, structure: "GUID")
        let guid = try reader.guid()
        guard reader.remaining == 0 else {
            throw .oversized(structure: "GUID", maximum: wireSize, actual: bytes.count)
        }
        return guid
    }

    /// From exactly 16 wire bytes (the reader guarantees the count; missing bytes read as zero).
    init(wireBytes: ArraySlice<UInt8>) {
        let b = Array(wireBytes)
        func byte(_ i: Int) -> UInt8 { i < b.count ? b[i] : 0 }
        var d1: UInt32 = 0, d2: UInt16 = 0, d3: UInt16 = 0, d4: UInt64 = 0
        for i in 0..<4 { d1 |= UInt32(byte(i)) << (8 * i) }
        for i in 0..<2 { d2 |= UInt16(byte(4 + i)) << (8 * i) }
        for i in 0..<2 { d3 |= UInt16(byte(6 + i)) << (8 * i) }
        for i in 0..<8 { d4 = d4 << 8 | UInt64(byte(8 + i)) }
        self.init(d1, d2, d3, d4)
    }

    public var wireBytes: [UInt8] {
        LittleEndian.bytes(of: data1) + LittleEndian.bytes(of: data2) + LittleEndian.bytes(of: data3)
            + (0..<8).map { UInt8(truncatingIfNeeded: data4 >> (56 - 8 * $0)) }
    }

    public var description: String {
        func hex<T: BinaryInteger>(_ v: T, _ width: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(hex(data1, 8))-\(hex(data2, 4))-\(hex(data3, 4))-\(hex(data4 >> 48, 4))-\(hex(data4 & 0xFFFF_FFFF_FFFF, 12))"
    }
}
