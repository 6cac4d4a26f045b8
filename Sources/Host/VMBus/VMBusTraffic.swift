import Synchronization

/// VMBus traffic counters for management metrics: one relaxed atomic add per event.
public final class VMBusTraffic: Sendable {
    public enum Counter: Int, CaseIterable, Sendable {
        /// Channel messages the guest posted (HvPostMessage to the VMBus connection).
        case messagesIn
        /// Channel messages the host posted to the guest.
        case messagesOut
        /// Ring packets the host consumed from guest-to-host rings.
        case packetsIn
        /// Ring packets the host wrote into host-to-guest rings.
        case packetsOut
        /// HvSignalEvent calls that reached an open channel.
        case signalsIn
        /// Channel interrupts the host raised for the guest.
        case interruptsOut

        public var name: String {
            switch self {
            case .messagesIn: "messages_in"
            case .messagesOut: "messages_out"
            case .packetsIn: "packets_in"
            case .packetsOut: "packets_out"
            case .signalsIn: "signals_in"
            case .interruptsOut: "interrupts_out"
            }
        }
    }

    private final class Slot: Sendable {
        let value = Atomic<UInt64>(0)
    }

    private let slots: [Slot] = Counter.allCases.map { _ in Slot() }

    public init() {}

    @inline(__always)
    public func add(_ counter: Counter, _ n: Int = 1) {
        slots[counter.rawValue].value.wrappingAdd(UInt64(truncatingIfNeeded: n), ordering: .relaxed)
    }

    public func snapshot() -> [String: UInt64] {
        Dictionary(uniqueKeysWithValues: Counter.allCases.map { ($0.name, slots[$0.rawValue].value.load(ordering: .relaxed)) })
    }
}
