import CKVM

/// A CPUID feature bit the VM config can hide from the guest, named as Linux's /proc/cpuinfo
/// names it (so a user can copy names from a host or guest).
public struct CPUFeature: Sendable, Hashable {
    public enum Register: String, Sendable, Hashable { case eax, ebx, ecx, edx }

    public let name: String
    public let leaf: UInt32
    public let subleaf: UInt32
    public let register: Register
    public let bit: UInt32
    /// An instruction-set extension (what CPU templates choose among), as opposed to a platform
    /// feature (APIC, PAE, TSC...) that templates leave alone and only `disable` removes.
    public let isInstructionSet: Bool

    var mask: UInt32 { 1 << bit }

    /// Whether `entry` holds this bit (its leaf and subleaf).
    func locates(_ entry: kvm_cpuid_entry2) -> Bool {
        entry.function == leaf && (entry.index == subleaf || entry.flags & UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX) == 0)
    }

    public static func named(_ name: String) -> CPUFeature? { all.first { $0.name == name } }

    private static func isa(_ name: String, _ leaf: UInt32, _ subleaf: UInt32, _ register: Register, _ bit: UInt32) -> CPUFeature {
        CPUFeature(name: name, leaf: leaf, subleaf: subleaf, register: register, bit: bit, isInstructionSet: true)
    }

    private static func platform(_ name: String, _ leaf: UInt32, _ subleaf: UInt32, _ register: Register, _ bit: UInt32) -> CPUFeature {
        CPUFeature(name: name, leaf: leaf, subleaf: subleaf, register: register, bit: bit, isInstructionSet: false)
    }

    /// Bit positions: Intel SDM vol. 2A, CPUID; AMD APM vol. 3, appendix E.
    public static let all: [CPUFeature] = [
        // Leaf 1 EDX
        isa("fpu", 1, 0, .edx, 0), platform("tsc", 1, 0, .edx, 4), platform("msr", 1, 0, .edx, 5),
        platform("pae", 1, 0, .edx, 6), isa("cx8", 1, 0, .edx, 8), platform("apic", 1, 0, .edx, 9),
        isa("sep", 1, 0, .edx, 11), platform("mtrr", 1, 0, .edx, 12), platform("pge", 1, 0, .edx, 13),
        isa("cmov", 1, 0, .edx, 15), platform("pat", 1, 0, .edx, 16), isa("clflush", 1, 0, .edx, 19),
        isa("mmx", 1, 0, .edx, 23), isa("fxsr", 1, 0, .edx, 24), isa("sse", 1, 0, .edx, 25),
        isa("sse2", 1, 0, .edx, 26), platform("ht", 1, 0, .edx, 28),
        // Leaf 1 ECX
        isa("pni", 1, 0, .ecx, 0), isa("pclmulqdq", 1, 0, .ecx, 1), isa("monitor", 1, 0, .ecx, 3),
        isa("ssse3", 1, 0, .ecx, 9), isa("fma", 1, 0, .ecx, 12), isa("cx16", 1, 0, .ecx, 13),
        platform("pcid", 1, 0, .ecx, 17), isa("sse4_1", 1, 0, .ecx, 19), isa("sse4_2", 1, 0, .ecx, 20),
        platform("x2apic", 1, 0, .ecx, 21), isa("movbe", 1, 0, .ecx, 22), isa("popcnt", 1, 0, .ecx, 23),
        platform("tsc_deadline_timer", 1, 0, .ecx, 24), isa("aes", 1, 0, .ecx, 25), isa("xsave", 1, 0, .ecx, 26),
        isa("avx", 1, 0, .ecx, 28), isa("f16c", 1, 0, .ecx, 29), isa("rdrand", 1, 0, .ecx, 30),
        // Leaf 7.0 EBX
        platform("fsgsbase", 7, 0, .ebx, 0), isa("bmi1", 7, 0, .ebx, 3), isa("hle", 7, 0, .ebx, 4),
        isa("avx2", 7, 0, .ebx, 5), platform("smep", 7, 0, .ebx, 7), isa("bmi2", 7, 0, .ebx, 8),
        isa("erms", 7, 0, .ebx, 9), platform("invpcid", 7, 0, .ebx, 10), isa("rtm", 7, 0, .ebx, 11),
        isa("avx512f", 7, 0, .ebx, 16), isa("avx512dq", 7, 0, .ebx, 17), isa("rdseed", 7, 0, .ebx, 18),
        isa("adx", 7, 0, .ebx, 19), platform("smap", 7, 0, .ebx, 20), isa("clflushopt", 7, 0, .ebx, 23),
        isa("clwb", 7, 0, .ebx, 24), isa("avx512cd", 7, 0, .ebx, 28), isa("sha_ni", 7, 0, .ebx, 29),
        isa("avx512bw", 7, 0, .ebx, 30), isa("avx512vl", 7, 0, .ebx, 31),
        // Leaf 7.0 ECX
        isa("avx512vbmi", 7, 0, .ecx, 1), platform("umip", 7, 0, .ecx, 2), platform("pku", 7, 0, .ecx, 3),
        isa("vaes", 7, 0, .ecx, 9), isa("vpclmulqdq", 7, 0, .ecx, 10), isa("rdpid", 7, 0, .ecx, 22),
        // Leaf 0xD.1 EAX: XSAVE variants
        isa("xsaveopt", 0xD, 1, .eax, 0), isa("xsavec", 0xD, 1, .eax, 1), isa("xgetbv1", 0xD, 1, .eax, 2),
        isa("xsaves", 0xD, 1, .eax, 3),
        // Leaf 0x80000001 ECX
        isa("lahf_lm", 0x8000_0001, 0, .ecx, 0), isa("abm", 0x8000_0001, 0, .ecx, 5),
        isa("sse4a", 0x8000_0001, 0, .ecx, 6), isa("3dnowprefetch", 0x8000_0001, 0, .ecx, 8),
        isa("xop", 0x8000_0001, 0, .ecx, 11), isa("fma4", 0x8000_0001, 0, .ecx, 16), isa("tbm", 0x8000_0001, 0, .ecx, 21),
        // Leaf 0x80000001 EDX
        isa("syscall", 0x8000_0001, 0, .edx, 11), platform("nx", 0x8000_0001, 0, .edx, 20),
        platform("pdpe1gb", 0x8000_0001, 0, .edx, 26), isa("rdtscp", 0x8000_0001, 0, .edx, 27),
        isa("lm", 0x8000_0001, 0, .edx, 29),
        // Leaf 0x80000007 EDX: the TSC runs at a constant rate in every power state
        platform("invtsc", 0x8000_0007, 0, .edx, 8),
    ]
}
