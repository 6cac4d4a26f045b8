import VeneerPluginKit

extension Heartbeat {
    static let definition = PluginDefinition(
        name: "heartbeat",
        version: "1.0.0",
        summary: "Hyper-V heartbeat integration service: knows whether the guest is alive",
        kind: .synthetic,
        parameters: [
            ParameterSpec("interval_ms", .int(min: 100, max: 60_000), default: "2000",
                          doc: "milliseconds between heartbeats (Hyper-V sends one every 2 s)"),
            ParameterSpec("lost_after", .int(min: 1, max: 100), default: "3",
                          doc: "heartbeats missed in a row after which the guest counts as lost"),
        ]
    ) { host, params, _ throws(PluginError) in
        try Heartbeat(host: host, intervalMilliseconds: params.int("interval_ms"), lostAfter: params.int("lost_after"))
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: Heartbeat.definition) }
