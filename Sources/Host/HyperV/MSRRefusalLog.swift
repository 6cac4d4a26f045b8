import Synchronization

/// Debug-level lines for MSR accesses the guest gets a #GP for: the first refusal of each
/// (MSR, direction), up to `limit` lines in all, then one line saying the rest go unlogged, so a
/// guest probing MSRs in a loop cannot flood the log.
final class MSRRefusalLog: Sendable {
    private struct Key: Hashable {
        let msr: UInt32
        let write: Bool
    }

    private struct State {
        var seen: Set<Key> = []
        var lines = 0
    }

    static let limit = 64

    private let enabled: Bool
    private let emit: @Sendable (String) -> Void
    private let state = Mutex(State())

    convenience init(logger: Logger) {
        self.init(enabled: logger.threshold >= .debug) { logger.log(.debug, "msr", $0) }
    }

    /// `emit` gets each line; nothing is formatted unless `enabled`.
    init(enabled: Bool, emit: @escaping @Sendable (String) -> Void) {
        self.enabled = enabled
        self.emit = emit
    }

    /// `write`: the value of a refused write; nil for a refused read.
    func refused(vp: UInt32, msr: UInt32, write: UInt64?) {
        guard enabled else { return }
        let line = state.withLock { s -> String? in
            guard s.lines <= Self.limit, s.seen.insert(Key(msr: msr, write: write != nil)).inserted else { return nil }
            s.lines += 1
            if s.lines > Self.limit { return "further refused MSR accesses are not logged" }
            if let write { return "VP \(vp): wrmsr \(hex(msr)) <- \(hex(write)) refused (#GP)" }
            return "VP \(vp): rdmsr \(hex(msr)) refused (#GP)"
        }
        if let line { emit(line) }
    }
}
