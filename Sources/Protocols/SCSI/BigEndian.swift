/// SCSI fields are big-endian. These helpers index only inside the array: bytes past its end read
/// as zero and writes past it are dropped, so a short CDB or parameter list can never be overrun.
extension Array where Element == UInt8 {
    @inline(__always)
    func be<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size {
            let index = offset + i
            let byte: UInt8 = index >= 0 && index < count ? self[index] : 0
            value = (value << 8) | T(byte)
        }
        return value
    }

    /// A 24-bit big-endian field.
    @inline(__always)
    func be24(at offset: Int) -> UInt32 {
        (UInt32(be(UInt8.self, at: offset)) << 16) | UInt32(be(UInt16.self, at: offset + 1))
    }

    @inline(__always)
    mutating func putBE<T: FixedWidthInteger & UnsignedInteger>(_ value: T, at offset: Int) {
        let size = MemoryLayout<T>.size
        for i in 0..<size where offset + i >= 0 && offset + i < count {
            self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * (size - 1 - i)))
        }
    }

    @inline(__always)
    mutating func putBE24(_ value: UInt32, at offset: Int) {
        putBE(UInt8(truncatingIfNeeded: value >> 16), at: offset)
        putBE(UInt16(truncatingIfNeeded: value), at: offset + 1)
    }

    /// `text` in ASCII, space-padded or cut to `width` bytes (INQUIRY's vendor/product fields).
    mutating func putASCII(_ text: String, at offset: Int, width: Int) {
        let bytes = Array(text.utf8.map { $0 >= 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: " ") }.prefix(width))
        for i in 0..<width where offset + i < count {
            self[offset + i] = i < bytes.count ? bytes[i] : UInt8(ascii: " ")
        }
    }
}
