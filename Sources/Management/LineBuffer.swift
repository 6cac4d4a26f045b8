/// Splits a byte stream into newline-terminated lines, bounded in length. The worker protocol
/// switches from lines to raw console bytes after a `console` answer, so the splitting is done
/// here on plain bytes rather than by a channel decoder that would have to be removed mid-stream.
struct LineBuffer {
    let limit: Int
    private var pending: [UInt8] = []
    /// How far `pending` has been searched for a newline already.
    private var searched = 0

    struct TooLong: Error, CustomStringConvertible {
        var limit: Int
        var description: String { "a line from the worker is longer than \(limit) bytes" }
    }

    init(limit: Int) { self.limit = limit }

    mutating func append(_ bytes: some Collection<UInt8>) { pending += bytes }

    /// The next complete line without its newline, or nil when none is complete yet.
    mutating func nextLine() throws(TooLong) -> [UInt8]? {
        guard let end = pending[searched...].firstIndex(of: 0x0A) else {
            searched = pending.count
            guard pending.count <= limit else { throw TooLong(limit: limit) }
            return nil
        }
        let line = Array(pending[..<end])
        pending.removeSubrange(...end)
        searched = 0
        return line
    }

    /// What arrived after the last line taken (raw stream bytes once the protocol switched).
    mutating func takeRemainder() -> [UInt8] {
        defer { pending = []; searched = 0 }
        return pending
    }
}
