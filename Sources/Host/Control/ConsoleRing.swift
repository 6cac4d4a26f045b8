/// The most recent guest console output, for clients that attach late: a byte ring that keeps
/// the last `capacity` bytes written to it.
public struct ConsoleRing: Sendable {
    public let capacity: Int
    private var storage: [UInt8]
    /// Where the next byte goes.
    private var head = 0
    /// Bytes held (at most `capacity`).
    public private(set) var count = 0

    public static let defaultCapacity = 64 << 10

    public init(capacity: Int = ConsoleRing.defaultCapacity) {
        self.capacity = max(capacity, 1)
        storage = [UInt8](repeating: 0, count: self.capacity)
    }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        // Only the last `capacity` bytes of a large write can survive it.
        for byte in bytes.suffix(capacity) {
            storage[head] = byte
            head = (head + 1) % capacity
            if count < capacity { count += 1 }
        }
    }

    /// The held bytes, oldest first.
    public var contents: [UInt8] {
        let start = (head - count + capacity) % capacity
        if start + count <= capacity { return Array(storage[start..<start + count]) }
        return Array(storage[start...] + storage[..<(start + count - capacity)])
    }
}
