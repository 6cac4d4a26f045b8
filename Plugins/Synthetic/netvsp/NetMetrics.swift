import VeneerPluginKit
import Synchronization

/// What the NIC counts (ABI 1.8 metrics, and the `status` control op). Every hostile or dropped
/// input lands in one of these; none is trusted.
final class NetMetrics: Sendable {
    enum Counter: Int, CaseIterable, Sendable {
        case txFrames, txBytes, rxFrames, rxBytes
        /// Guest frames whose source MAC is not the NIC's (spoofing off).
        case txSpoofDropped
        /// Guest frames over the bandwidth cap.
        case txRateDropped
        /// Guest frames tagged for a VLAN the access port is not on.
        case txVLANDropped
        /// Guest frames the port could not take (queue full or error).
        case txQueueDropped
        /// Host frames dropped: the guest's ring full, filtered out, malformed (or GSO).
        case rxRingFullDropped, rxFilteredDropped, rxMalformedDropped
        /// Guest packets or messages that broke a rule: bad section index or size, bad RNDIS
        /// length/offset, bad PPI, buffers outside guest RAM, unknown or out-of-order NVSP.
        case badSection, badRNDIS, badPPI, badBuffer, badNVSP
        /// Completions naming no packet in flight.
        case badCompletion

        /// The key in the `status` op's JSON; the metric is `netvsp_<key>_total`.
        var key: String {
            switch self {
            case .txFrames: "tx_frames"
            case .txBytes: "tx_bytes"
            case .rxFrames: "rx_frames"
            case .rxBytes: "rx_bytes"
            case .txSpoofDropped: "tx_spoofed_dropped"
            case .txRateDropped: "tx_rate_limited_dropped"
            case .txVLANDropped: "tx_vlan_dropped"
            case .txQueueDropped: "tx_queue_dropped"
            case .rxRingFullDropped: "rx_ring_full_dropped"
            case .rxFilteredDropped: "rx_filtered_dropped"
            case .rxMalformedDropped: "rx_malformed_dropped"
            case .badSection: "guest_bad_section"
            case .badRNDIS: "guest_bad_rndis"
            case .badPPI: "guest_bad_ppi"
            case .badBuffer: "guest_bad_buffer"
            case .badNVSP: "guest_bad_nvsp"
            case .badCompletion: "guest_bad_completion"
            }
        }

        var name: String { "netvsp_" + key + "_total" }
    }

    private final class Cell: Sendable {
        let value = Atomic<UInt64>(0)
    }

    private let values: [Cell]
    private let published: [Metric?]

    init(host: HostServices?) {
        values = Counter.allCases.map { _ in Cell() }
        published = Counter.allCases.map { counter in
            try? host?.registerMetric(counter.name, help: "netvsp: \(String(counter.key.map { $0 == "_" ? " " : $0 }))", kind: .counter)
        }
    }

    func add(_ counter: Counter, _ delta: UInt64 = 1) {
        values[counter.rawValue].value.add(delta, ordering: .relaxed)
        published[counter.rawValue]?.add(delta)
    }

    func value(_ counter: Counter) -> UInt64 { values[counter.rawValue].value.load(ordering: .relaxed) }
}

