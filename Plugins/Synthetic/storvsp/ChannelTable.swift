import Synchronization

/// The controller's channels: the primary in slot 0, sub-channel n in slot n. Each slot has its
/// own lock around its session, so events of different channels (which the host may deliver on
/// different threads at once) never wait for each other; a slot's lock only orders that channel's
/// ring events against its engines' completions. Channel ids are found without a lock.
final class ChannelTable: Sendable {
    static let capacity = 65
    private static let empty = UInt32.max

    final class Slot: Sendable {
        let id = Atomic<UInt32>(ChannelTable.empty)
        let session = Mutex<ChannelSession?>(nil)
    }

    let slots: [Slot] = (0..<ChannelTable.capacity).map { _ in Slot() }

    init(primary: UInt32) { slots[0].id.store(primary, ordering: .releasing) }

    func slot(of channel: UInt32) -> Slot? {
        guard channel != Self.empty else { return nil }
        return slots.first { $0.id.load(ordering: .acquiring) == channel }
    }

    /// Records sub-channel ids in the first free slots after the primary; false when full.
    func addSubChannels(_ ids: [UInt32]) -> Bool {
        var free = slots.dropFirst().filter { $0.id.load(ordering: .acquiring) == Self.empty }
        guard free.count >= ids.count else { return false }
        for id in ids { free.removeFirst().id.store(id, ordering: .releasing) }
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

    /// Runs `body` on the channel's session under its slot's lock.
    func with(_ channel: UInt32, _ body: (ChannelSession) -> Void) {
        slot(of: channel)?.session.withLock { session in
            if let session { body(session) }
        }
    }

    var subChannelIDs: [UInt32] {
        slots.dropFirst().map { $0.id.load(ordering: .acquiring) }.filter { $0 != Self.empty }
    }
}
