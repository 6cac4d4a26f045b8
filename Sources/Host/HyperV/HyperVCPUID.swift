import CKVM

/// The Hyper-V CPUID leaves (0x40000000-0x40000005) that make an unmodified guest take the
/// enlightened path, replacing KVM's own hypervisor leaves: Linux picks the hypervisor whose
/// detection scores highest, and with "KVMKVMKVM" present it would not load hv_vmbus.
enum HyperVCPUID {
    /// Leaf 0x40000002, the hypervisor version a guest logs ("Hyper-V: Host Build 10.0.20348.0-0-0"
    /// on Linux) and Windows may key behaviour on: 10.0 build 20348 is Windows Server 2022, the
    /// host generation whose interface Veneer emulates (VMBus 5.3, the synthetic MSRs, timers
    /// and SynIC of TLFS 6.0). Service pack, branch and number are 0.
    static let buildNumber: UInt32 = 20348
    static let majorVersion: UInt32 = 10
    static let minorVersion: UInt32 = 0

    // CPUID 0x40000003 EAX: partition privileges (TLFS; Linux hyperv-tlfs.h).
    static let timeRefCount: UInt32 = 1 << 1
    static let synic: UInt32 = 1 << 2
    static let syntheticTimers: UInt32 = 1 << 3
    static let hypercall: UInt32 = 1 << 5
    static let vpIndex: UInt32 = 1 << 6
    static let referenceTSC: UInt32 = 1 << 9
    static let frequencyMSRs: UInt32 = 1 << 11
    static let tscInvariantControls: UInt32 = 1 << 15
    // CPUID 0x40000003 EDX.
    static let frequencyMSRsAvailable: UInt32 = 1 << 8
    static let stimerDirectMode: UInt32 = 1 << 19

    static func leaves(vcpuCount: UInt32, features: HyperVFeatures = HyperVFeatures()) -> [kvm_cpuid_entry2] {
        func leaf(_ function: UInt32, _ eax: UInt32, _ ebx: UInt32 = 0, _ ecx: UInt32 = 0, _ edx: UInt32 = 0) -> kvm_cpuid_entry2 {
            var e = kvm_cpuid_entry2()
            e.function = function
            e.eax = eax; e.ebx = ebx; e.ecx = ecx; e.edx = edx
            return e
        }
        let privileges = timeRefCount | synic | syntheticTimers | hypercall | vpIndex | referenceTSC | frequencyMSRs
            | (features.invariantTSC ? tscInvariantControls : 0)
        let messaging: UInt32 = 1 << 4 | 1 << 5          // PostMessages, SignalEvents
        let deprecateAutoEOI: UInt32 = 1 << 9            // the in-kernel LAPIC has no auto-EOI
        return [
            leaf(0x4000_0000, 0x4000_0005, 0x7263_694D, 0x666F_736F, 0x7648_2074), // "Microsoft Hv"
            leaf(0x4000_0001, 0x3123_7648),                                        // "Hv#1"
            leaf(0x4000_0002, buildNumber, majorVersion << 16 | minorVersion, 0, 0),
            leaf(0x4000_0003, privileges, messaging, 0, frequencyMSRsAvailable | stimerDirectMode),
            leaf(0x4000_0004, deprecateAutoEOI, 0xFFFF_FFFF),                      // never spin-wait notify
            leaf(0x4000_0005, vcpuCount, vcpuCount),
        ]
    }

    /// The host's CPUID with every hypervisor leaf replaced by Hyper-V's. Leaf 0x80000007's
    /// invariant-TSC bit (EDX bit 8, what Linux reads once it has written the invariant-TSC
    /// control MSR) stays only when the partition offers invariant TSC, so the two never disagree.
    /// (Hosts whose KVM does not honour the table for that leaf show the guest their own.)
    static func apply(to base: [kvm_cpuid_entry2], vcpuCount: UInt32, features: HyperVFeatures = HyperVFeatures()) -> [kvm_cpuid_entry2] {
        base.filter { $0.function < 0x4000_0000 || $0.function >= 0x4001_0000 }.map { entry in
            var e = entry
            if e.function == 0x8000_0007, !features.invariantTSC { e.edx &= ~(1 << 8) }
            return e
        } + leaves(vcpuCount: vcpuCount, features: features)
    }
}
