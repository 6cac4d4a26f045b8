/// The receive buffer's sub-allocations ("sections"): which are free, which travel together in one
/// transfer-page packet, and which packet the guest may complete. Preallocated arrays only: taking
/// and freeing sections never allocates.
///
/// A packet's transaction id names its first section and that section's generation, so a
/// completion the guest invents, repeats or sends late (after the buffer was replaced) frees
/// nothing it does not own.
struct SectionPool: Sendable {
    private enum State: UInt8 { case free, member, head }

    let count: Int
    private var freeStack: [UInt32]
    private var next: [UInt32]
    private var state: [State]
    private var generation: [UInt32]
    private var nextGeneration: UInt32
    /// Receive queues (bit per queue index) that found the pool empty and wait for sections.
    private(set) var waiters: UInt64 = 0

    static let endOfChain = UInt32.max

    init(count: Int, firstGeneration: UInt32 = 1) {
        self.count = count
        freeStack = (0..<UInt32(count)).reversed().map { $0 }
        next = [UInt32](repeating: Self.endOfChain, count: count)
        state = [State](repeating: .free, count: count)
        generation = [UInt32](repeating: 0, count: count)
        nextGeneration = firstGeneration
    }

    /// Where a replacement pool should start its generations, so old ids never match new ones.
    var generationAfter: UInt32 { nextGeneration &+ 1 }

    var freeCount: Int { freeStack.count }

    /// Takes a free section, linking it after `tail` (the chain's last section) or making it the
    /// head of a new chain. Nil when none is free; queue `waiter` is then recorded.
    mutating func take(after tail: UInt32?, waiter: Int?) -> UInt32? {
        guard let section = freeStack.popLast() else {
            if let waiter, waiter < 64 { waiters |= 1 << UInt64(waiter) }
            return nil
        }
        next[Int(section)] = Self.endOfChain
        if let tail, Int(tail) < count, state[Int(tail)] != .free {
            state[Int(section)] = .member
            next[Int(tail)] = section
        } else {
            state[Int(section)] = .head
            nextGeneration &+= 1
            generation[Int(section)] = nextGeneration
        }
        return section
    }

    /// Appends `section` (a chain head of its own, just taken) to the chain ending at `tail`;
    /// with no tail it stays a head. False when either is not what the caller says.
    mutating func link(_ section: UInt32, after tail: UInt32?) -> Bool {
        guard Int(section) < count, state[Int(section)] == .head else { return false }
        guard let tail else { return true }
        guard Int(tail) < count, tail != section, state[Int(tail)] != .free, next[Int(tail)] == Self.endOfChain else { return false }
        state[Int(section)] = .member
        next[Int(tail)] = section
        return true
    }

    /// Records that queue `waiter` waits for sections (when it stopped with none left).
    mutating func wait(_ waiter: Int) {
        if waiter >= 0 && waiter < 64 { waiters |= 1 << UInt64(waiter) }
    }

    /// The transaction id of the chain headed by `head`.
    func transactionID(head: UInt32) -> UInt64 { UInt64(generation[Int(head)]) << 32 | UInt64(head) }

    /// Frees the chain a completion names; how many sections came back (0: not ours). Returns
    /// and clears the waiting queues when any came back.
    mutating func complete(transactionID: UInt64) -> (freed: Int, waiters: UInt64) {
        let head = Int(transactionID & 0xFFFF_FFFF)
        guard head < count, state[head] == .head, UInt64(generation[head]) == transactionID >> 32 else { return (0, 0) }
        return release(head: UInt32(head))
    }

    /// Frees the chain headed by `head` (a packet that could not be sent).
    mutating func release(head: UInt32) -> (freed: Int, waiters: UInt64) {
        var freed = 0
        var at = head
        // At most `count` steps: a chain can only hold sections that were taken.
        while at != Self.endOfChain, Int(at) < count, state[Int(at)] != .free, freed < count {
            let following = next[Int(at)]
            state[Int(at)] = .free
            next[Int(at)] = Self.endOfChain
            freeStack.append(at)
            freed += 1
            at = following
        }
        let woken = freed > 0 ? waiters : 0
        if freed > 0 { waiters = 0 }
        return (freed, woken)
    }
}
