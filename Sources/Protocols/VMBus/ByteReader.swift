/// Sequential little-endian reads from a byte array. Every read is bounds-checked and reports
/// `VMBusWireError.truncated` naming the structure being decoded, so a short input can never be
/// read past its end.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    /// Names the structure in errors.
    public let structure: String

    public init(_ bytes: [UInt8], structure: String, offset: Int = 0) {
        self.bytes = bytes
        self.structure = structure
        self.offset = min(max(offset, 0), bytes.count)
    }

    public var remaining: Int { bytes.count - offset }

    /// Fails unless `count` more bytes are present.
    public func require(_ count: Int) throws(VMBusWireError) {
        guard count >= 0, count <= remaining else {
            throw .truncated(structure: structure, needed: offset + max(count, 0), available: bytes.count)
        }
    }

    public mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_: T.Type = T.self) throws(VMBusWireError) -> T {
        let size = MemoryLayout<T>.size
        try require(size)
        var value: T = 0
        for i in 0..<size { value |= T(bytes[offset + i]) << (8 * i) }
        offset += size
        return value
    }

    public mutating func u8() throws(VMBusWireError) -> UInt8 { try integer() }
    public mutating func u16() throws(VMBusWireError) -> UInt16 { try integer() }
    public mutating func u32() throws(VMBusWireError) -> UInt32 { try integer() }
    public mutating func u64() throws(VMBusWireError) -> UInt64 { try integer() }

    public mutating func bytes(_ count: Int) throws(VMBusWireError) -> [UInt8] {
        try require(count)
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    public mutating func skip(_ count: Int) throws(VMBusWireError) {
        try require(count)
        offset += count
    }

    public mutating func guid() throws(VMBusWireError) -> GUID {
        GUID(wireBytes: try bytes(GUID.wireSize)[...])
    }
}
