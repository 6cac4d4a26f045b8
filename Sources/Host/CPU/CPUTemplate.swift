/// What instruction-set extensions a guest may see: the host's, or one of the x86-64
/// micro-architecture levels of the psABI, so a VM sees the same CPU on every host of a pool
/// (and a snapshot taken on a newer host restores on an older one).
public enum CPUTemplate: String, Sendable, CaseIterable {
    /// Everything the host's KVM supports.
    case host
    case x86_64_v1 = "x86-64-v1"
    case x86_64_v2 = "x86-64-v2"
    case x86_64_v3 = "x86-64-v3"
    case x86_64_v4 = "x86-64-v4"

    private static let v1: Set<String> = ["fpu", "cx8", "sep", "cmov", "clflush", "mmx", "fxsr", "sse", "sse2", "syscall", "lm"]
    private static let v2 = v1.union(["cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"])
    private static let v3 = v2.union(["avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"])
    private static let v4 = v3.union(["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"])

    /// The instruction-set extensions this template takes away; platform features stay.
    public var hiddenFeatures: [CPUFeature] {
        let allowed: Set<String>
        switch self {
        case .host: return []
        case .x86_64_v1: allowed = Self.v1
        case .x86_64_v2: allowed = Self.v2
        case .x86_64_v3: allowed = Self.v3
        case .x86_64_v4: allowed = Self.v4
        }
        return CPUFeature.all.filter { $0.isInstructionSet && !allowed.contains($0.name) }
    }
}
