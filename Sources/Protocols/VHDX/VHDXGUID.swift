/// A GUID as VHDX stores it: data1 (u32), data2 (u16), data3 (u16) little-endian, then the
/// eight data4 bytes in order. Kept as the 16 on-disk bytes; the text form is the usual
/// `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (parent_linkage values carry it in braces).
public struct VHDXGUID: Hashable, Sendable, CustomStringConvertible {
    public static let size = 16
    public static let zero = VHDXGUID(bytes: [UInt8](repeating: 0, count: 16))

    /// The on-disk bytes.
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        var b = Array(bytes.prefix(16))
        while b.count < 16 { b.append(0) }
        self.bytes = b
    }

    /// From the four fields as the text form reads them (`data4`: its eight bytes in order).
    public init(_ data1: UInt32, _ data2: UInt16, _ data3: UInt16, _ data4: [UInt8]) {
        var b = [UInt8](repeating: 0, count: 16)
        b.putU32(data1, at: 0)
        b.putU16(data2, at: 4)
        b.putU16(data3, at: 6)
        b.putBytes(Array(data4.prefix(8)), at: 8)
        self.bytes = b
    }

    /// Parses the text form, braces optional, any case.
    public init?(_ text: String) {
        var body = Substring(text)
        if body.first == "{", body.last == "}" { body = body.dropFirst().dropLast() }
        let groups = body.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.count == 5, groups.map(\.count) == [8, 4, 4, 4, 12],
              groups.allSatisfy({ $0.allSatisfy(\.isHexDigit) }),
              let d1 = UInt32(groups[0], radix: 16), let d2 = UInt16(groups[1], radix: 16),
              let d3 = UInt16(groups[2], radix: 16), let d4a = UInt16(groups[3], radix: 16),
              let d4b = UInt64(groups[4], radix: 16)
        else { return nil }
        var b = [UInt8](repeating: 0, count: 16)
        b.putU32(d1, at: 0)
        b.putU16(d2, at: 4)
        b.putU16(d3, at: 6)
        b[8] = UInt8(d4a >> 8)
        b[9] = UInt8(d4a & 0xFF)
        for i in 0..<6 { b[10 + i] = UInt8(truncatingIfNeeded: d4b >> (40 - 8 * i)) }
        self.bytes = b
    }

    /// A random (version 4, RFC 4122 variant) GUID: new write, data and log GUIDs.
    public static func random() -> VHDXGUID {
        var generator = SystemRandomNumberGenerator()
        var b = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        b[7] = (b[7] & 0x0F) | 0x40  // data3's high nibble: version 4
        b[8] = (b[8] & 0x3F) | 0x80  // data4[0]: the RFC 4122 variant
        return VHDXGUID(bytes: b)
    }

    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }

    public var description: String {
        func hex(_ v: UInt64, _ digits: Int) -> String {
            let s = String(v, radix: 16, uppercase: true)
            return String(repeating: "0", count: max(0, digits - s.count)) + s
        }
        let d4 = bytes[10..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return hex(UInt64(bytes.u32(at: 0)), 8) + "-" + hex(UInt64(bytes.u16(at: 4)), 4) + "-"
            + hex(UInt64(bytes.u16(at: 6)), 4) + "-" + hex(UInt64(bytes[8]) << 8 | UInt64(bytes[9]), 4) + "-" + hex(d4, 12)
    }
}
