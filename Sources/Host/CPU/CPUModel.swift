import CKVM

/// The CPU a VM's guest is shown: a template plus features the config hides by name. Applied to
/// KVM's supported CPUID before the Hyper-V leaves are added and KVM_SET_CPUID2 gives it to each
/// vCPU. Whether the host's KVM then really shows the guest that table is another matter
/// (`CPUIDProbe` finds out); this type only says what was asked.
public struct CPUModel: Sendable, Equatable {
    public var template: CPUTemplate = .host
    /// Features hidden besides the template's, in the order the config names them.
    public var disabled: [CPUFeature] = []

    public init(template: CPUTemplate = .host, disabled: [CPUFeature] = []) {
        self.template = template
        self.disabled = disabled
    }

    /// Every feature this model hides, template first, each once.
    public var hiddenFeatures: [CPUFeature] {
        var seen = Set<CPUFeature>()
        return (template.hiddenFeatures + disabled).filter { seen.insert($0).inserted }
    }

    /// `cpuid` with the hidden features' bits cleared. A feature the host does not have is
    /// already clear; leaves absent from the table stay absent.
    public func apply(to cpuid: [kvm_cpuid_entry2]) -> [kvm_cpuid_entry2] {
        let hidden = hiddenFeatures
        guard !hidden.isEmpty else { return cpuid }
        return cpuid.map { entry in
            var e = entry
            for f in hidden where f.locates(entry) {
                switch f.register {
                case .eax: e.eax &= ~f.mask
                case .ebx: e.ebx &= ~f.mask
                case .ecx: e.ecx &= ~f.mask
                case .edx: e.edx &= ~f.mask
                }
            }
            return e
        }
    }

    /// Whether `feature`'s bit is set in the entry of `cpuid` that holds it.
    public static func isSet(_ feature: CPUFeature, in cpuid: [kvm_cpuid_entry2]) -> Bool {
        guard let entry = cpuid.first(where: { feature.locates($0) }) else { return false }
        let value = switch feature.register {
        case .eax: entry.eax
        case .ebx: entry.ebx
        case .ecx: entry.ecx
        case .edx: entry.edx
        }
        return value & feature.mask != 0
    }
}
