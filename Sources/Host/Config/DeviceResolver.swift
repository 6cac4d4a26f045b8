/// A configured device bound to its loaded plugin, with parameters checked against its schema.
public struct ResolvedDevice: Sendable {
    public var config: DeviceConfig
    public var library: PluginLibrary
    public var parameters: [ParameterValue]
}

/// Loads the plugin of every device in a config and validates its parameters: everything
/// `veneer check` verifies, without KVM. A VM with VMBus (`hyperv = true`, or a synthetic device)
/// also gets the integration services the config leaves on (`IntegrationServices`), after its own.
public enum DeviceResolver {
    public static func resolve(_ config: VMConfig, registry: PluginRegistry) throws(MachineError) -> [ResolvedDevice] {
        var resolved = try resolve(config.devices, of: config, registry: registry)
        let enlightened = config.hyperv ?? resolved.contains { $0.library.info.kind == .synthetic }
        resolved += try resolve(IntegrationServices.defaultDevices(for: config, enlightened: enlightened), of: config, registry: registry)
        return resolved
    }

    private static func resolve(_ devices: [DeviceConfig], of config: VMConfig, registry: PluginRegistry) throws(MachineError) -> [ResolvedDevice] {
        var resolved: [ResolvedDevice] = []
        for device in devices {
            let label = "\(device.key) '\(device.id)'"
            let library: PluginLibrary
            do throws(PluginLoadError) {
                let path: String
                if let explicit = device.path { path = explicit } else { path = try registry.locate(device.plugin) }
                library = try PluginLibrary(path: path)
            } catch {
                throw .plugin(file: config.file, device: label, error)
            }
            guard library.info.name == device.plugin else {
                // The key the config actually wrote: `path` if it named the file, else `plugin`.
                throw .config(ConfigError(file: config.file, key: "\(device.key).\(device.path == nil ? "plugin" : "path")",
                                          reason: "\(library.path) is plugin '\(library.info.name)', not '\(device.plugin)'"))
            }
            let values: [ParameterValue]
            do {
                values = try ParameterValidation.resolve(device.parameters, schema: library.info.parameters,
                                                         baseDirectory: config.baseDirectory ?? ConfigParser.directory(of: config.file))
            } catch {
                // A group's problem (`disk[2].cache`, or `disk` itself) names the device by id.
                let name = String(error.key.prefix { $0 != "[" && $0 != "." })
                let isGroup = library.info.parameters.contains { p in
                    if case .group = p.kind { return p.name == name } else { return false }
                }
                throw .config(ConfigError(file: config.file,
                                          key: isGroup ? DeviceConfig.groupKey(device.id, error.key) : "\(device.key).\(error.key)",
                                          reason: "\(error.reason) [plugin \(device.plugin)]"))
            }
            resolved.append(ResolvedDevice(config: device, library: library, parameters: values))
        }
        return resolved
    }
}
