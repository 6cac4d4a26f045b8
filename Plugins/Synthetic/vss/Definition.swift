import VeneerPluginKit

extension VSS {
    static let definition = PluginDefinition(
        name: "vss",
        version: "1.0.0",
        summary: "Hyper-V VSS (backup) integration service: freezes and thaws the guest's file systems around a backup",
        kind: .synthetic,
        parameters: [
            ParameterSpec("timeout_ms", .int(min: 100, max: 600_000), default: "35000",
                          doc: "milliseconds the guest has to answer a request other than FREEZE (Linux gives its daemon 30 s)"),
            ParameterSpec("freeze_timeout_ms", .int(min: 100, max: 1_000_000), default: "960000",
                          doc: "milliseconds the guest has to answer FREEZE (Linux gives its daemon 15 minutes)"),
            ParameterSpec("max_frozen_ms", .int(min: 100, max: 600_000), default: "10000",
                          doc: "the guest is thawed after this long frozen even if the backup has not finished"),
        ]
    ) { host, params, _ throws(PluginError) in
        try VSS(host: host, timeouts: VSS.Timeouts(request: params.int("timeout_ms"), freeze: params.int("freeze_timeout_ms"),
                                                   maximumFrozen: params.int("max_frozen_ms")))
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: VSS.definition) }
