/// Little-endian device-state encoding for save/load. Readers are bounds-checked: a truncated or
/// oversized blob is a `StateError`, never an out-of-bounds read.
public struct StateWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: Bool) { write(UInt8(value ? 1 : 0)) }

    public mutating func write(bytes more: [UInt8]) {
        write(UInt32(more.count))
        bytes.append(contentsOf: more)
    }
}

public struct StateError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public struct StateReader: Sendable {
    private let bytes: [UInt8]
    private var position = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var remaining: Int { bytes.count - position }

    public mutating func read<T: FixedWidthInteger>(_: T.Type = T.self) throws(StateError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw StateError("state truncated at byte \(position) (wanted \(size) more)") }
        var value: T = 0
        for i in 0..<size { value |= T(truncatingIfNeeded: bytes[position + i]) << (8 * i) }
        position += size
        return value
    }

    public mutating func readBool() throws(StateError) -> Bool {
        let b: UInt8 = try read()
        guard b <= 1 else { throw StateError("state has \(b) where a boolean belongs (byte \(position - 1))") }
        return b == 1
    }

    public mutating func readBytes(maxCount: Int) throws(StateError) -> [UInt8] {
        let count = Int(try read(UInt32.self))
        guard count <= maxCount, count <= remaining else {
            throw StateError("state byte string of \(count) bytes exceeds \(min(maxCount, remaining))")
        }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    /// Loads must consume everything: trailing bytes mean a format mismatch.
    public func finish() throws(StateError) {
        guard remaining == 0 else { throw StateError("state has \(remaining) unexpected trailing bytes") }
    }
}
