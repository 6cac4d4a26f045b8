import CKVM

/// The Hyper-V CPUID leaves (0x40000000-0x40000005) that make an unmodified guest take the
/// enlightened path, replacing KVM's own hypervisor leaves: Linux picks the hypervisor whose
/// detection scores highest, and with "KVMKVMKVM" present it would not load hv_vmbus.
enum HyperVCPUID {
    static func leaves(vcpuCount: UInt32) -> [kvm_cpuid_entry2] {
        func leaf(_ function: UInt32, _ eax: UInt32, _ ebx: UInt32 = 0, _ ecx: UInt32 = 0, _ edx: UInt32 = 0) -> kvm_cpuid_entry2 {
            var e = kvm_cpuid_entry2()
            e.function = function
            e.eax = eax; e.ebx = ebx; e.ecx = ecx; e.edx = edx
            return e
        }
        let privileges: UInt32 = 1 << 1 | 1 << 2 | 1 << 5 | 1 << 6 | 1 << 9 | 1 << 11
        //   TIME_REF_COUNT, SYNIC, HYPERCALL, VP_INDEX, REFERENCE_TSC, frequency MSRs
        let messaging: UInt32 = 1 << 4 | 1 << 5          // PostMessages, SignalEvents
        let frequencyMSRsAvailable: UInt32 = 1 << 8
        let deprecateAutoEOI: UInt32 = 1 << 9            // the in-kernel LAPIC has no auto-EOI
        return [
            leaf(0x4000_0000, 0x4000_0005, 0x7263_694D, 0x666F_736F, 0x7648_2074), // "Microsoft Hv"
            leaf(0x4000_0001, 0x3123_7648),                                        // "Hv#1"
            leaf(0x4000_0002, 0),
            leaf(0x4000_0003, privileges, messaging, 0, frequencyMSRsAvailable),
            leaf(0x4000_0004, deprecateAutoEOI, 0xFFFF_FFFF),                      // never spin-wait notify
            leaf(0x4000_0005, vcpuCount, vcpuCount),
        ]
    }

    /// The host's CPUID with every hypervisor leaf replaced by Hyper-V's.
    static func apply(to base: [kvm_cpuid_entry2], vcpuCount: UInt32) -> [kvm_cpuid_entry2] {
        base.filter { $0.function < 0x4000_0000 || $0.function >= 0x4001_0000 } + leaves(vcpuCount: vcpuCount)
    }
}
