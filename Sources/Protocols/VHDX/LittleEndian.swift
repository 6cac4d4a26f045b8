// Little-endian field access on byte arrays. Callers pass buffers whose size the structure
// fixes (a 4 KiB header, a 64 KiB table); reads past the end yield zero bytes rather than
// trapping so a truncated buffer decodes to values the validation then refuses.

extension Array where Element == UInt8 {
    public func u16(at offset: Int) -> UInt16 { UInt16(truncatingIfNeeded: le(offset, 2)) }
    public func u32(at offset: Int) -> UInt32 { UInt32(truncatingIfNeeded: le(offset, 4)) }
    public func u64(at offset: Int) -> UInt64 { le(offset, 8) }

    private func le(_ offset: Int, _ width: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<width where offset >= 0 && offset + i < count { value |= UInt64(self[offset + i]) << (8 * i) }
        return value
    }

    public mutating func putU16(_ value: UInt16, at offset: Int) { put(UInt64(value), offset, 2) }
    public mutating func putU32(_ value: UInt32, at offset: Int) { put(UInt64(value), offset, 4) }
    public mutating func putU64(_ value: UInt64, at offset: Int) { put(value, offset, 8) }
    public mutating func putBytes(_ bytes: [UInt8], at offset: Int) {
        for (i, b) in bytes.enumerated() where offset + i < count { self[offset + i] = b }
    }

    private mutating func put(_ value: UInt64, _ offset: Int, _ width: Int) {
        for i in 0..<width where offset + i < count { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    public func slice(_ offset: Int, _ length: Int) -> [UInt8] {
        guard offset >= 0, length >= 0, offset <= count else { return [] }
        return Array(self[offset..<Swift.min(count, offset + length)])
    }
}
