/// A VM as its config file describes it, after syntax and type checks. Plugin parameters are
/// checked later, against each plugin's own schema (`DeviceResolver`).
public struct VMConfig: Sendable, Equatable {
    public var file: String
    /// What relative paths (images, disks, plugin files) resolve against: the config file's
    /// directory unless the config was loaded with another (`veneer run --base-directory`, which
    /// veneerd uses for a config it keeps in its state directory).
    public var baseDirectory: String?
    public var name: String
    public var memoryBytes: UInt64
    public var vcpus: UInt32
    /// Whether the VM is enlightened: Hyper-V CPUID leaves, synthetic MSRs, hypercalls, SynIC and
    /// VMBus. Defaults to on when a synthetic (VMBus) device is configured.
    public var hyperv: Bool?
    public var generation: Generation
    /// What a guest-requested reset does: end the VM (`stop`, the default) or boot it again from
    /// the config (`restart`: a cold reset, devices recreated and RAM cleared).
    public var onReset: ResetAction = .stop

    public enum ResetAction: String, Sendable, Equatable {
        case stop, restart
    }
    public var boot: BootImage
    public var devices: [DeviceConfig]
    /// What the guest is told about the CPU (`[cpu]`): a template and hidden features.
    public var cpu = CPUModel()
    /// Which integration services a VM with VMBus gets by default (`[integration]`).
    public var integration = IntegrationServices()

    public static let maxVCPUs: UInt32 = 64
}

public struct DeviceConfig: Sendable, Equatable {
    public var id: String
    public var plugin: String
    /// An explicit .so to load instead of searching for `plugin` (third-party plugins).
    public var path: String?
    public var parameters: [String: ParameterValidation.Input]
    /// Where it sits in the file, for messages: `device[2]`.
    public var key: String

    /// How a message names a key of a parameter group's table: `device "scsi0": disk[2].cache`
    /// (by id, since a controller's tables are far from its `[[device]]` line).
    public static func groupKey(_ id: String, _ key: String) -> String { "device \"\(id)\": \(key)" }
}
