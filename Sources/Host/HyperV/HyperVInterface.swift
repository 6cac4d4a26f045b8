/// The numbers of the Hyper-V partition interface Veneer emulates (TLFS; Linux
/// `include/hyperv/hvgdk_mini.h`, `arch/x86/kernel/cpu/mshyperv.c`).
public enum HyperVInterface {
    public enum MSR {
        public static let guestOSID: UInt32 = 0x4000_0000
        public static let hypercall: UInt32 = 0x4000_0001
        public static let vpIndex: UInt32 = 0x4000_0002
        public static let timeRefCount: UInt32 = 0x4000_0020
        public static let referenceTSC: UInt32 = 0x4000_0021
        public static let tscFrequency: UInt32 = 0x4000_0022
        public static let apicFrequency: UInt32 = 0x4000_0023
        public static let vpAssistPage: UInt32 = 0x4000_0073
        public static let scontrol: UInt32 = 0x4000_0080
        public static let sversion: UInt32 = 0x4000_0081
        public static let siefp: UInt32 = 0x4000_0082
        public static let simp: UInt32 = 0x4000_0083
        public static let eom: UInt32 = 0x4000_0084
        public static let sint0: UInt32 = 0x4000_0090
        public static let sint15: UInt32 = 0x4000_009F
        /// STIMER0_CONFIG; STIMERn_CONFIG = stimer0Config + 2n, STIMERn_COUNT = stimer0Config + 2n + 1.
        public static let stimer0Config: UInt32 = 0x4000_00B0
        public static let stimer0Count: UInt32 = 0x4000_00B1
        public static let tscInvariantControl: UInt32 = 0x4000_0118
        /// The ranges forced to exit to user space, where anything Veneer does not implement gets
        /// #GP: the Hyper-V synthetic MSRs (KVM here has no Hyper-V emulation of its own, and one
        /// that had would answer with its own state), and KVM's paravirtual clock and feature MSRs,
        /// which KVM would otherwise accept from a guest that was never offered them (a Hyper-V
        /// partition exposes no "KVMKVMKVM" leaf). MSRs KVM does not know exit as well
        /// (KVM_MSR_EXIT_REASON_UNKNOWN) and get the same #GP.
        public static let userSpaceRanges: [(first: UInt32, count: UInt32)] = [
            (0x4000_0000, 0x200),       // Hyper-V synthetic MSRs
            (0x0000_0011, 2),           // MSR_KVM_WALL_CLOCK, MSR_KVM_SYSTEM_TIME
            (0x4B56_4D00, 0x100),       // MSR_KVM_WALL_CLOCK_NEW ... (KVM's own range)
        ]
    }

    /// The hypercall page's code leaves the guest through these ports (a `vmcall` never reaches
    /// user space on this KVM). `hypercallPort`: every hypercall but a fast HvSignalEvent, read
    /// from RCX/RDX/R8 with the result in RAX. `signalPort`: HvSignalEvent, one 32-bit write of
    /// the connection id, which an ioeventfd per open channel absorbs in the kernel.
    public static let hypercallPort: UInt16 = 0xEB
    public static let signalPort: UInt16 = 0xEC
    /// Ports reserved for the interface (no device may claim them).
    public static let reservedPorts: ClosedRange<UInt16> = 0xEB...0xEF

    /// The local APIC timer ticks once per nanosecond in KVM's LAPIC emulation.
    public static let apicFrequencyHz: UInt64 = 1_000_000_000
}
