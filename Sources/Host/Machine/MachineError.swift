/// Why a VM could not be built or started. Every case reads as one line naming what and where.
public enum MachineError: Error, CustomStringConvertible, Sendable {
    case config(ConfigError)
    case plugin(file: String, device: String, PluginLoadError)
    case device(PluginDeviceError)
    case kvm(KVMError)
    case memory(String)
    case boot(BootError)
    case system(SystemError)

    /// One line, whatever a config value or a plugin's message put into it.
    public var description: String { oneLine(text) }

    private var text: String {
        switch self {
        case .config(let e): e.description
        case .plugin(let file, let device, let e): "\(file): \(device): \(e)"
        case .device(let e): e.description
        case .kvm(let e): e.description
        case .memory(let m): m
        case .boot(let e): e.description
        case .system(let e): e.description
        }
    }

    /// The status `veneer` exits with (`SetupExitStatus`).
    public var exitStatus: Int32 {
        switch self {
        case .config(let e): e.exitStatus
        case .plugin, .device: SetupExitStatus.plugin
        case .kvm, .memory, .system: SetupExitStatus.hostUnavailable
        case .boot(let e): e.unreadable ? SetupExitStatus.noInput : SetupExitStatus.badConfig
        }
    }
}
