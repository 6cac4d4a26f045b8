import Synchronization

/// Why a vCPU left KVM_RUN, as management reports it.
public enum ExitReason: Int, CaseIterable, Sendable {
    case io, mmio, msrRead, msrWrite, hypercall, hlt, intr, systemEvent, shutdown, other

    /// The name in metrics (`WorkerMetrics.VCPU.exits`).
    public var name: String {
        switch self {
        case .io: "io"
        case .mmio: "mmio"
        case .msrRead: "msr_read"
        case .msrWrite: "msr_write"
        case .hypercall: "hypercall"
        case .hlt: "hlt"
        case .intr: "intr"
        case .systemEvent: "system_event"
        case .shutdown: "shutdown"
        case .other: "other"
        }
    }
}

/// One vCPU's exits by reason. Only that vCPU's thread writes (a relaxed load and store, no
/// read-modify-write, no lock: the exit path pays a plain increment); any thread may read, and a
/// read racing an exit sees the count before or after it.
public final class ExitCounters: Sendable {
    private final class Slot: Sendable {
        let value = Atomic<UInt64>(0)
    }

    private let slots: [Slot] = ExitReason.allCases.map { _ in Slot() }

    public init() {}

    /// From the owning vCPU's thread only.
    @inline(__always)
    public func record(_ reason: ExitReason) {
        let slot = slots[reason.rawValue]
        slot.value.store(slot.value.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    public func count(_ reason: ExitReason) -> UInt64 { slots[reason.rawValue].value.load(ordering: .relaxed) }

    /// Every reason's count, by name (zeros included, so a scrape always has the same series).
    public func snapshot() -> [String: UInt64] {
        Dictionary(uniqueKeysWithValues: ExitReason.allCases.map { ($0.name, count($0)) })
    }
}
