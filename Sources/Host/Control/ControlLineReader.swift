/// Splits a control connection's bytes into request lines (newline-delimited JSON), refusing a
/// line longer than `limit` before it is buffered whole: a client cannot make the worker hold
/// more than `limit` bytes of one request.
public struct ControlLineReader: Sendable {
    public enum Item: Sendable, Equatable {
        case line([UInt8])
        /// A line passed `limit` bytes; the rest of the connection cannot be framed reliably.
        case tooLong
    }

    public let limit: Int
    private var pending: [UInt8] = []
    private var overflowed = false

    public init(limit: Int) { self.limit = limit }

    /// Adds received bytes; returns the complete lines in them (without their newline, a trailing
    /// CR dropped too), then `.tooLong` once if the limit was passed.
    public mutating func feed<C: Collection>(_ bytes: C) -> [Item] where C.Element == UInt8 {
        guard !overflowed else { return [] }
        var items: [Item] = []
        for byte in bytes {
            if byte == 0x0A {
                if pending.last == 0x0D { pending.removeLast() }
                if !pending.isEmpty { items.append(.line(pending)) }
                pending.removeAll(keepingCapacity: true)
                continue
            }
            guard pending.count < limit else {
                overflowed = true
                pending = []
                items.append(.tooLong)
                return items
            }
            pending.append(byte)
        }
        return items
    }
}
