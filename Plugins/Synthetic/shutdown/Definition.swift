import VeneerPluginKit

extension Shutdown {
    static let definition = PluginDefinition(
        name: "shutdown",
        version: "1.0.0",
        summary: "Hyper-V shutdown integration service: asks the guest to shut down, restart or hibernate",
        kind: .synthetic,
        parameters: [
            ParameterSpec("action", .choice(["shutdown", "restart", "hibernate"]), default: "shutdown",
                          doc: "what the triggered request asks for"),
            ParameterSpec("force", .bool, default: "false", doc: "set the request's force flag (Linux acts the same either way)"),
            ParameterSpec("reason", .int(min: 0, max: 0xFFFF_FFFF), default: "0x80000000",
                          doc: "the request's reason code (0x80000000: planned)"),
            ParameterSpec("message", .string, default: "",
                          doc: "the message shown in the guest (at most 1024 UTF-16 code units)"),
            ParameterSpec("timeout_ms", .int(min: 100, max: 600_000), default: "10000",
                          doc: "milliseconds the guest has to answer a request"),
        ]
    ) { host, params, _ throws(PluginError) in
        guard let action = ShutdownRequest.Action(rawValue: params.string("action")) else {
            throw PluginError("action '\(params.string("action"))' is not shutdown, restart or hibernate")
        }
        let message = Array(params.string("message").utf16)
        guard let request = ShutdownRequest(action: action, force: params.bool("force"),
                                            reason: UInt32(truncatingIfNeeded: params.int("reason")), message: message) else {
            throw PluginError("message is \(message.count) UTF-16 code units; at most 1024 fit a shutdown request")
        }
        return try Shutdown(host: host, configured: request, timeoutMilliseconds: params.int("timeout_ms"))
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: Shutdown.definition) }
