import StorVSPProtocol
import Synchronization

/// What the channels of one controller share. Channels never take a common lock for I/O: the
/// LUN table is copied into each channel when its generation changes (hot add or remove), and
/// the primary's negotiated version is published once through an atomic.
final class ControllerState: Sendable {
    struct Limits: Sendable, Equatable {
        /// The `max_subchannels` parameter: sub-channels offered at most, whatever the vCPUs.
        var subChannelCap: Int
        var maxTransferBytes: UInt32
        /// Requests a channel keeps in flight before it stops reading its ring.
        var queueDepth: Int
    }

    let limits: Limits
    let queueFactory: any LUNQueueFactory
    private let table: Mutex<LUNMap>
    private let tableGeneration = Atomic<UInt64>(0)
    /// 0 until the primary finished initialization; then the version's raw value.
    private let readyVersion = Atomic<UInt32>(0)
    private let vcpus = Atomic<Int>(1)

    init(limits: Limits, luns: LUNMap, queueFactory: any LUNQueueFactory) {
        self.limits = limits
        self.queueFactory = queueFactory
        table = Mutex(luns)
    }

    /// Sub-channels the guest may ask for: one per vCPU beyond the first, at most the cap.
    var maxSubChannels: Int { max(0, min(limits.subChannelCap, vcpus.load(ordering: .relaxed) - 1, 64)) }

    func setVCPUCount(_ count: Int) { vcpus.store(max(1, count), ordering: .relaxed) }

    var generation: UInt64 { tableGeneration.load(ordering: .acquiring) }

    /// A copy of the table and its generation (taken rarely: at open and after hot plug).
    func snapshot() -> (LUNMap, UInt64) {
        table.withLock { ($0, tableGeneration.load(ordering: .acquiring)) }
    }

    /// Applies a change to the table; true when it changed.
    func update(_ change: (inout LUNMap) -> Bool) -> Bool {
        table.withLock { map in
            guard change(&map) else { return false }
            tableGeneration.add(1, ordering: .releasing)
            return true
        }
    }

    /// The version the primary negotiated, once it finished initializing (sub-channels serve I/O
    /// only from then on).
    var readyProtocol: StorageProtocolVersion? {
        let raw = readyVersion.load(ordering: .acquiring)
        return raw == 0 ? nil : StorageProtocolVersion(rawValue: UInt16(truncatingIfNeeded: raw))
    }

    func setReady(_ version: StorageProtocolVersion?) {
        readyVersion.store(UInt32(version?.rawValue ?? 0), ordering: .releasing)
    }
}
