/// Sequential little-endian reads from a byte slice. Every read is bounds-checked and reports
/// `ICWireError.truncated` naming the structure, so a short packet is never read past its end.
public struct ICByteReader: Sendable {
    public let bytes: ArraySlice<UInt8>
    /// Bytes consumed so far (relative to the start of `bytes`).
    public private(set) var offset = 0
    /// Names the structure in errors.
    public let structure: String

    public init(_ bytes: ArraySlice<UInt8>, structure: String) {
        self.bytes = bytes
        self.structure = structure
    }

    public init(_ bytes: [UInt8], structure: String) { self.init(bytes[...], structure: structure) }

    public var remaining: Int { bytes.count - offset }

    /// Fails unless `count` more bytes are present.
    public func require(_ count: Int) throws(ICWireError) {
        guard count >= 0, count <= remaining else {
            throw .truncated(structure: structure, needed: offset + max(count, 0), available: bytes.count)
        }
    }

    public mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_: T.Type = T.self) throws(ICWireError) -> T {
        let size = MemoryLayout<T>.size
        try require(size)
        let start = bytes.startIndex + offset
        var value: T = 0
        for i in 0..<size { value |= T(bytes[start + i]) << (8 * i) }
        offset += size
        return value
    }

    public mutating func u8() throws(ICWireError) -> UInt8 { try integer() }
    public mutating func u16() throws(ICWireError) -> UInt16 { try integer() }
    public mutating func u32() throws(ICWireError) -> UInt32 { try integer() }
    public mutating func u64() throws(ICWireError) -> UInt64 { try integer() }

    public mutating func skip(_ count: Int) throws(ICWireError) {
        try require(count)
        offset += count
    }

    /// Everything not read yet.
    public var rest: ArraySlice<UInt8> { bytes[(bytes.startIndex + offset)...] }
}

/// Appends little-endian fields: the encoding side of `ICByteReader`.
public struct ICByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_ value: T) {
        for i in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }

    public mutating func u8(_ value: UInt8) { bytes.append(value) }
    public mutating func u16(_ value: UInt16) { integer(value) }
    public mutating func u32(_ value: UInt32) { integer(value) }
    public mutating func u64(_ value: UInt64) { integer(value) }
    public mutating func bytes(_ values: some Sequence<UInt8>) { bytes.append(contentsOf: values) }
    public mutating func zeros(_ count: Int) { bytes += repeatElement(0, count: max(count, 0)) }
}
