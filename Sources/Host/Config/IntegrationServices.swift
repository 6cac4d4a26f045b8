/// The Hyper-V integration services a VM with VMBus gets without listing them (`[integration]`):
/// heartbeat, shutdown, timesync, kvp, vss and fcopy, each its plugin of the same name with its
/// default parameters (kvp also gets `vm_name` = the VM's name), appended after the configured
/// devices so their channels never move the configured ones'. A config turns one off with
/// `[integration] NAME = false`; a `[[device]]` of the same plugin (or with the service's name as
/// its id) replaces the default.
public struct IntegrationServices: Sendable, Equatable {
    /// Every service, in the order its default device is added.
    public static let all = ["heartbeat", "shutdown", "timesync", "kvp", "vss", "fcopy"]

    /// The services turned off.
    public var disabled: Set<String> = []
    /// The services the config set to true explicitly (an error on a VM without VMBus).
    public var explicitlyEnabled: Set<String> = []

    public init() {}

    public func isEnabled(_ service: String) -> Bool { !disabled.contains(service) }

    /// How a default device's `key` reads in messages and in `veneer check`.
    public static let keyPrefix = "[integration] "

    public static func isDefault(_ device: DeviceConfig) -> Bool { device.key.hasPrefix(keyPrefix) }

    /// The default devices `config` gets, given whether it has VMBus: the enabled services no
    /// configured device already provides.
    public static func defaultDevices(for config: VMConfig, enlightened: Bool) -> [DeviceConfig] {
        guard enlightened else { return [] }
        return all.filter { service in
            config.integration.isEnabled(service) && !config.devices.contains { $0.plugin == service || $0.id == service }
        }.map { service in
            var parameters: [String: ParameterValidation.Input] = [:]
            if service == "kvp" { parameters["vm_name"] = .string(config.name) }
            return DeviceConfig(id: service, plugin: service, path: nil, parameters: parameters, key: keyPrefix + service)
        }
    }

    /// Reads the `[integration]` table: booleans named after the services, nothing else.
    static func parse(_ table: inout TableReader, file: String) throws(ConfigError) -> IntegrationServices {
        var services = IntegrationServices()
        for service in all {
            guard let on = try table.bool(service) else { continue }
            if on { services.explicitlyEnabled.insert(service) } else { services.disabled.insert(service) }
        }
        do { try table.finish() } catch {
            throw ConfigError(file: file, key: error.key, reason: "\(error.reason): [integration] takes \(all.joined(separator: ", ")) (true or false)")
        }
        return services
    }
}
