/// Appends little-endian fields to a byte array: the encoding side of `ByteReader`.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_ value: T) {
        for i in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }

    public mutating func u8(_ value: UInt8) { bytes.append(value) }
    public mutating func u16(_ value: UInt16) { integer(value) }
    public mutating func u32(_ value: UInt32) { integer(value) }
    public mutating func u64(_ value: UInt64) { integer(value) }
    public mutating func bytes(_ values: [UInt8]) { bytes += values }
    public mutating func zeros(_ count: Int) { bytes += repeatElement(0, count: max(count, 0)) }
    public mutating func guid(_ value: GUID) { bytes += value.wireBytes }

    /// Writes `values` into a fixed-size field: truncated or zero-padded to exactly `size` bytes.
    public mutating func fixed(_ values: [UInt8], size: Int) {
        bytes += values.prefix(size)
        zeros(size - min(values.count, size))
    }
}

/// Little-endian loads and stores at an offset, for callers that patch a structure in place.
public enum LittleEndian {
    public static func load<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, from bytes: [UInt8], at offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= bytes.count - size else { return nil }
        var value: T = 0
        for i in 0..<size { value |= T(bytes[offset + i]) << (8 * i) }
        return value
    }

    public static func bytes<T: FixedWidthInteger & UnsignedInteger>(of value: T) -> [UInt8] {
        (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}
