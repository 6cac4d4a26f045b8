import Hummingbird
import Prometheus
import VeneerManagement
import WorkerControlProtocol

/// Renders the workers' raw counters in Prometheus text through swift-prometheus:
/// `veneer_vcpu_exits_total{vm,vcpu,reason}`, `veneer_vmbus_<counter>_total{vm}`,
/// `veneer_device_<name>{vm,device}` for plugin metrics, and `veneer_vms{state}`.
/// A fresh registry per scrape holds the VMs' values, so VMs that went away drop out.
/// Plugin-supplied names and values are untrusted: names are reduced to [a-z0-9_], a name
/// already used with another kind is skipped, and counters that are negative or not finite
/// are skipped (the registry would stop the process on any of these).
enum MetricsRenderer {
    static func render(metrics: [String: WorkerMetrics], summaries: [VMSummary]) -> [UInt8] {
        let registry = PrometheusCollectorRegistry()
        var families = FamilyTable()

        var byState: [VMState: Int] = [:]
        for summary in summaries { byState[summary.state, default: 0] += 1 }
        for state in VMState.allCases {
            registry.makeGauge(descriptor: family("veneer_vms", help: "VMs defined, by state"), labels: [("state", state.rawValue)])
                .set(to: Double(byState[state] ?? 0))
        }

        for vm in metrics.keys.sorted() {
            guard let vmMetrics = metrics[vm] else { continue }
            for vcpu in vmMetrics.vcpus {
                for reason in vcpu.exits.keys.sorted() {
                    guard let count = vcpu.exits[reason] else { continue }
                    registry.makeCounter(descriptor: family("veneer_vcpu_exits_total", help: "vCPU exits to the VMM, by reason"),
                                         labels: [("vm", vm), ("vcpu", String(vcpu.index)), ("reason", sanitized(reason))])
                        .increment(by: clampedInt64(count))
                }
            }
            for counter in vmMetrics.vmbus.keys.sorted() {
                guard let value = vmMetrics.vmbus[counter] else { continue }
                let name = "veneer_vmbus_\(sanitized(counter))_total"
                let help = "VMBus host counter \(sanitized(counter))"
                guard families.claim(name, kind: "counter", help: help) != nil else { continue }
                registry.makeCounter(descriptor: family(name, help: help), labels: [("vm", vm)])
                    .increment(by: clampedInt64(value))
            }
            for device in vmMetrics.devices.keys.sorted() {
                for metric in vmMetrics.devices[device] ?? [] {
                    let name = "veneer_device_\(sanitized(metric.name))"
                    guard let help = families.claim(name, kind: metric.kind, help: metric.help) else { continue }
                    let labels = [("vm", vm), ("device", device)]
                    switch metric.kind {
                    case "counter":
                        guard metric.value.isFinite, metric.value >= 0 else { continue }
                        registry.makeCounter(descriptor: family(name, help: help), labels: labels).increment(by: metric.value)
                    case "gauge":
                        guard metric.value.isFinite else { continue }
                        registry.makeGauge(descriptor: family(name, help: help), labels: labels).set(to: metric.value)
                    default:
                        continue
                    }
                }
            }
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }

    static func family(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// A metric name part reduced to Prometheus' safe alphabet: lower-case letters, digits, '_'.
    static func sanitized(_ raw: String) -> String {
        let mapped = raw.lowercased().unicodeScalars.map { scalar -> Character in
            switch scalar {
            case "a"..."z", "0"..."9": Character(scalar)
            default: "_"
            }
        }
        let text = String(mapped.prefix(100))
        return text.isEmpty ? "unnamed" : text
    }

    static func clampedInt64(_ value: UInt64) -> Int64 {
        value > UInt64(Int64.max) ? Int64.max : Int64(value)
    }

    /// The first kind and help seen for each family name win; later conflicting uses are dropped.
    struct FamilyTable {
        private var families: [String: (kind: String, help: String)] = [:]

        /// The help text to use for `name`, or nil when it is taken by another kind (or the kind is unknown).
        mutating func claim(_ name: String, kind: String, help: String) -> String? {
            guard kind == "counter" || kind == "gauge" else { return nil }
            if let existing = families[name] {
                return existing.kind == kind ? existing.help : nil
            }
            let bounded = String(help.prefix(200))
            families[name] = (kind, bounded)
            return bounded
        }
    }
}

extension VeneerdAPI {
    func metricsResponse() async -> Response {
        var text = MetricsRenderer.render(metrics: await manager.metrics(), summaries: await manager.list())
        daemonMetrics.emit(into: &text)
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: text)))
    }
}
