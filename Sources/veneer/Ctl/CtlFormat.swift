import Foundation
import VeneerManagement
import VeneerHost
import WorkerControlProtocol

/// The human-readable forms `veneer ctl` prints without `--json`.
enum CtlFormat {
    /// Columns padded to their widest cell, two spaces apart.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { column in
                column == row.count - 1 ? row[column] : row[column].padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    static func list(_ vms: [VMSummary]) -> String {
        table(["NAME", "STATE", "VCPUS", "MEMORY", "UPTIME", "PID"], vms.map { vm in
            [vm.name, vm.state.rawValue, "\(vm.vcpus)", bytes(vm.memoryBytes), vm.uptimeMs.map(duration) ?? "-", vm.pid.map { "\($0)" } ?? "-"]
        })
    }

    /// 32 MiB, 1.5 GiB, 812 KiB: the largest binary unit that keeps at least 1.
    static func bytes(_ value: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var scaled = Double(value)
        var unit = 0
        while scaled >= 1024, unit < units.count - 1 {
            scaled /= 1024
            unit += 1
        }
        if unit == 0 { return "\(value) B" }
        let rounded = (scaled * 10).rounded() / 10
        return rounded == rounded.rounded() ? "\(Int(rounded)) \(units[unit])" : "\(String(format: "%.1f", rounded)) \(units[unit])"
    }

    /// 45s, 3m05s, 2h07m, 4d03h.
    static func duration(_ ms: Int64) -> String {
        let seconds = max(ms, 0) / 1000
        let (d, h, m, s) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60)
        if d > 0 { return String(format: "%lldd%02lldh", d, h) }
        if h > 0 { return String(format: "%lldh%02lldm", h, m) }
        if m > 0 { return String(format: "%lldm%02llds", m, s) }
        return "\(s)s"
    }

    static func time(_ msSinceEpoch: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(msSinceEpoch) / 1000))
    }

    static func details(_ vm: VMDetails) -> String {
        var lines: [(String, String)] = [
            ("name", vm.summary.name),
            ("state", vm.summary.state.rawValue),
            ("vcpus", "\(vm.summary.vcpus)"),
            ("memory", bytes(vm.summary.memoryBytes)),
            ("uptime", vm.summary.uptimeMs.map(duration) ?? "-"),
            ("pid", vm.summary.pid.map { "\($0)" } ?? "-"),
            ("restart", "\(vm.restartPolicy.mode.rawValue) (backoff \(vm.restartPolicy.initialBackoffMs)-\(vm.restartPolicy.maxBackoffMs) ms, \(vm.restarts) restart\(vm.restarts == 1 ? "" : "s") so far)"),
            ("directory", vm.directory),
        ]
        if let heartbeat = vm.heartbeat { lines.append(("heartbeat", heartbeat)) }
        if let worker = vm.worker {
            lines.append(("started", time(worker.startedAtMs)))
            lines.append(("overhead", "\(bytes(worker.overheadBytes)) beyond guest RAM"))
            lines.append(("resets", "\(worker.resets)"))
            for (index, device) in worker.devices.enumerated() {
                lines.append((index == 0 ? "devices" : "", "\(device.id): \(device.plugin) \(device.version) (\(device.kind))"))
            }
        }
        if let exit = vm.lastExit {
            lines.append(("last exit", "\(exit.reason), status \(exit.status), at \(time(exit.timeMs))"))
            lines.append(("", oneLine(exit.message)))
        }
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { key, value in
            (key.isEmpty ? "" : key + ":").padding(toLength: width + 2, withPad: " ", startingAt: 0) + value
        }.joined(separator: "\n") + "\n"
    }

    static func event(_ event: VMEvent) -> String {
        "\(time(event.timeMs))  \(event.name)  \(event.state.rawValue)  \(event.reason)\n"
    }

    /// What a state operation prints: the VM and the state it is in now.
    static func transition(_ vm: VMDetails) -> String {
        "\(vm.summary.name): \(vm.summary.state.rawValue)\n"
    }
}
