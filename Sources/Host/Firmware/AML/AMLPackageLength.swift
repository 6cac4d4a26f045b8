/// The AML PkgLength encoding (ACPI 6.5, 20.2.4): a lead byte whose bits 7-6 count the bytes that
/// follow (0-3). With none, bits 5-0 hold the length (0-63); otherwise bits 3-0 hold its low nibble
/// and each following byte the next 8 bits, so 2, 3 and 4 bytes reach 2^12-1, 2^20-1 and 2^28-1.
/// The length counts the PkgLength bytes themselves, which is why `wrap` has to choose its size.
public enum AMLPackageLength {
    public static let maximum = (1 << 28) - 1
    /// The largest length each encoding size (1-4 bytes) can hold.
    static let limits = [(1 << 6) - 1, (1 << 12) - 1, (1 << 20) - 1, (1 << 28) - 1]

    /// The encoding of `value` exactly as given.
    public static func encode(_ value: Int) throws(AMLError) -> [UInt8] {
        guard value >= 0, value <= maximum else { throw .lengthTooLarge(value) }
        if value <= limits[0] { return [UInt8(value)] }
        let following = limits.firstIndex { value <= $0 } ?? 3
        var bytes = [UInt8(following << 6) | UInt8(value & 0xF)]
        for i in 0..<following { bytes.append(UInt8(truncatingIfNeeded: value >> (4 + 8 * i))) }
        return bytes
    }

    /// `body` preceded by a PkgLength covering itself and `body`, in the fewest bytes.
    public static func wrap(_ body: [UInt8]) throws(AMLError) -> [UInt8] {
        for (index, limit) in limits.enumerated() {
            let total = body.count + index + 1
            if total <= limit { return try encode(total) + body }
        }
        throw .lengthTooLarge(body.count + limits.count)
    }
}
