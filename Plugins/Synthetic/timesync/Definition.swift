import VeneerPluginKit

extension TimeSync {
    static let definition = PluginDefinition(
        name: "timesync",
        version: "1.0.0",
        summary: "Hyper-V time-sync integration service: keeps the guest's clock on the host's",
        kind: .synthetic,
        parameters: [
            // At most 300 s: Linux's PTP clock reports a sample older than 600 s as stale.
            ParameterSpec("interval_ms", .int(min: 1000, max: 300_000), default: "5000",
                          doc: "milliseconds between time samples (Hyper-V sends one every 5 s; at most 300000)"),
        ]
    ) { host, params, _ throws(PluginError) in
        try TimeSync(host: host, intervalMilliseconds: params.int("interval_ms"))
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: TimeSync.definition) }
