import Synchronization

/// The NIC's channels: the primary in slot 0, sub-channel n in slot n (its queue index). Each
/// slot has its own lock around its session, so channels never wait for each other; a slot's
/// lock orders that channel's ring events against receive queues writing to it.
final class ChannelTable: Sendable {
    static let capacity = 65
    private static let empty = UInt32.max

    final class Slot: Sendable {
        let id = Atomic<UInt32>(ChannelTable.empty)
        let session = Mutex<ChannelSession?>(nil)
    }

    let slots: [Slot] = (0..<ChannelTable.capacity).map { _ in Slot() }

    init(primary: UInt32) { slots[0].id.store(primary, ordering: .releasing) }

    /// The queue index of a channel, if it is one of ours.
    func index(of channel: UInt32) -> Int? {
        guard channel != Self.empty else { return nil }
        return slots.firstIndex { $0.id.load(ordering: .acquiring) == channel }
    }

    /// Records sub-channel ids in the slots after those already used; false when full.
    func addSubChannels(_ ids: [UInt32]) -> Bool {
        let used = slots.dropFirst().filter { $0.id.load(ordering: .acquiring) != Self.empty }.count
        guard used + ids.count < slots.count else { return false }
        for (i, id) in ids.enumerated() { slots[1 + used + i].id.store(id, ordering: .releasing) }
        return true
    }

    /// Forgets the sub-channels (the host rescinds them with their primary), closing their sessions.
    func clearSubChannels() {
        for slot in slots.dropFirst() {
            slot.session.withLock { session in
                session?.close()
                session = nil
            }
            slot.id.store(Self.empty, ordering: .releasing)
        }
    }

    /// Runs `body` on the session of queue `index` under its lock; nil when none is open.
    func withSession<T: Sendable>(index: Int, _ body: (ChannelSession) -> T) -> T? {
        guard index >= 0 && index < slots.count else { return nil }
        return slots[index].session.withLock { session -> T? in
            guard let session else { return nil }
            return body(session)
        }
    }

    func withSession<T: Sendable>(channel: UInt32, _ body: (ChannelSession) -> T) -> T? {
        guard let index = index(of: channel) else { return nil }
        return withSession(index: index, body)
    }

    /// Work tokens that resume a channel's reading (after a budget ran out).
    static let workBase: UInt64 = 0x4348_0000_0000_0000
    static func workToken(channel: UInt32) -> UInt64 { workBase | UInt64(channel) }
}
