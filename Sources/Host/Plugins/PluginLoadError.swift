/// Why a plugin file could not be used.
public enum PluginLoadError: Error, CustomStringConvertible, Sendable, Equatable {
    case notFound(name: String, searched: [String])
    case cannotOpen(path: String, reason: String)
    case missingEntry(path: String)
    case abiMismatch(path: String, plugin: String, host: String)
    case malformed(path: String, reason: String)
    /// One descriptor field (`param_spec_size`, `params[2].name`) is out of bounds or malformed.
    case invalidField(path: String, field: String, problem: String)
    /// A plugin name (from a config or a command line) that the descriptor's naming rule forbids.
    case invalidName(name: String)

    public var description: String {
        switch self {
        case .notFound(let name, let searched):
            "plugin '\(name)' not found (searched \(searched.isEmpty ? "no directories" : searched.joined(separator: ", ")); set VENEER_PLUGIN_PATH or give the device a `path`)"
        case .cannotOpen(let path, let reason): "plugin \(path) cannot be loaded: \(reason)"
        case .missingEntry(let path): "plugin \(path) does not export the entry symbol veneer_plugin_entry"
        case .abiMismatch(let path, let plugin, let host):
            "plugin \(path) was built for Veneer plugin ABI \(plugin); this host speaks ABI \(host) (same major, minor no newer)"
        case .malformed(let path, let reason): "plugin \(path) has a malformed descriptor: \(reason)"
        case .invalidField(let path, let field, let problem): "plugin \(path) has a malformed descriptor: \(field): \(problem)"
        case .invalidName(let name):
            "'\(name)' is not a plugin name ([a-z][a-z0-9_-]*, at most \(DescriptorReader.maxNameBytes) bytes); give the device a `path` to load a file by its path"
        }
    }
}
