/// Little-endian field access for the fixed RNDIS and NDIS layouts. Reads past the end of the input give 0
/// (callers check sizes first), so a short message can never be read out of bounds.
extension Array where Element == UInt8 {
    @inline(__always)
    func le<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size where offset + i >= 0 && offset + i < count {
            value |= T(self[offset + i]) << (8 * i)
        }
        return value
    }

    @inline(__always)
    mutating func putLE<T: FixedWidthInteger & UnsignedInteger>(_ value: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size where offset + i >= 0 && offset + i < count {
            self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i))
        }
    }
}
