/// Netlink integers are in host byte order; Veneer runs on x86-64 (KVM), which is little-endian.
/// These helpers keep that one assumption in one place.
#if _endian(big)
#error("Netlink encoding here assumes a little-endian host")
#endif

extension Array where Element == UInt8 {
    mutating func appendHost<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        for _ in 0..<MemoryLayout<T>.size {
            append(UInt8(truncatingIfNeeded: v))
            v = v >> 8
        }
    }

    mutating func padToAlignment() {
        while count % Netlink.alignment != 0 { append(0) }
    }
}

extension Collection where Element == UInt8, Index == Int {
    /// A host-order integer at `offset` from the start, or nil when the bytes run out.
    func readHost<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= count - size else { return nil }
        var value: T = 0
        let base = startIndex + offset
        for i in (0..<size).reversed() {
            value = (value << 8) | T(self[base + i])
        }
        return value
    }
}
