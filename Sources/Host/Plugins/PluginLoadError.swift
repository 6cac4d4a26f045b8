/// Why a plugin file could not be used.
public enum PluginLoadError: Error, CustomStringConvertible, Sendable, Equatable {
    case notFound(name: String, searched: [String])
    case cannotOpen(path: String, reason: String)
    case missingEntry(path: String)
    case abiMismatch(path: String, plugin: String, host: String)
    case malformed(path: String, reason: String)

    public var description: String {
        switch self {
        case .notFound(let name, let searched):
            "plugin '\(name)' not found (searched \(searched.isEmpty ? "no directories" : searched.joined(separator: ", ")); set VENEER_PLUGIN_PATH or give the device a `path`)"
        case .cannotOpen(let path, let reason): "plugin \(path) cannot be loaded: \(reason)"
        case .missingEntry(let path): "plugin \(path) does not export the entry symbol veneer_plugin_entry"
        case .abiMismatch(let path, let plugin, let host):
            "plugin \(path) was built for Veneer plugin ABI \(plugin); this host speaks ABI \(host) (same major, minor no newer)"
        case .malformed(let path, let reason): "plugin \(path) has a malformed descriptor: \(reason)"
        }
    }
}
