import Synchronization
import VeneerPluginABI

/// The metrics one device instance published (ABI 1.8). Registration happens during create;
/// updates come from any thread and cost one atomic operation on a fixed slot.
public final class DeviceMetrics: Sendable {
    public struct Definition: Sendable, Equatable {
        public let name: String
        public let help: String
        /// VENEER_METRIC_COUNTER or VENEER_METRIC_GAUGE.
        public let kind: UInt32
        public var isCounter: Bool { kind == UInt32(VENEER_METRIC_COUNTER) }
    }

    public struct Sample: Sendable, Equatable {
        public let definition: Definition
        public let value: Int64
    }

    private let definitions = Mutex<[Definition]>([])
    private let sealed = Atomic<Bool>(false)
    private final class Slot: Sendable {
        let value = Atomic<Int64>(0)
    }

    /// One slot per possible metric, allocated up front so updates never take a lock.
    private let values: [Slot] = (0..<ManagementLimits.maxMetrics).map { _ in Slot() }

    public init() {}

    /// Refuses registrations from now on (the device's create has returned).
    public func seal() { sealed.store(true, ordering: .releasing) }

    public func register(name: String, help: String, kind: UInt32) -> (veneer_status, UInt32) {
        guard !sealed.load(ordering: .acquiring) else { return (.invalid, 0) }
        return definitions.withLock { d in
            guard !d.contains(where: { $0.name == name }) else { return (.invalid, 0) }
            guard d.count < ManagementLimits.maxMetrics else { return (veneer_status(VENEER_ENOSPC), 0) }
            d.append(Definition(name: name, help: help.split(whereSeparator: \.isNewline).joined(separator: " "), kind: kind))
            return (.ok, UInt32(d.count - 1))
        }
    }

    public func add(_ metric: UInt32, delta: UInt64) {
        guard Int(metric) < values.count else { return }
        values[Int(metric)].value.wrappingAdd(Int64(truncatingIfNeeded: delta), ordering: .relaxed)
    }

    public func set(_ metric: UInt32, value: Int64) {
        guard Int(metric) < values.count else { return }
        values[Int(metric)].value.store(value, ordering: .relaxed)
    }

    public func samples() -> [Sample] {
        definitions.withLock { $0 }.enumerated().map { i, d in Sample(definition: d, value: values[i].value.load(ordering: .relaxed)) }
    }
}
