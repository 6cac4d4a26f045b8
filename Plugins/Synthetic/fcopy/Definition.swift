import VeneerPluginKit

extension FileCopy {
    static let definition = PluginDefinition(
        name: "fcopy",
        version: "1.0.0",
        summary: "Hyper-V file copy (guest services) integration service: copies host files into the guest",
        kind: .synthetic,
        parameters: [
            ParameterSpec("timeout_ms", .int(min: 100, max: 600_000), default: "30000",
                          doc: "milliseconds the guest has to answer one request of a copy"),
        ]
    ) { host, params, _ throws(PluginError) in
        try FileCopy(host: host, timeoutMilliseconds: params.int("timeout_ms"))
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: FileCopy.definition) }
