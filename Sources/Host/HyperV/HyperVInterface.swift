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
        /// The range forced to exit to user space (KVM here has no Hyper-V emulation of its own).
        public static let firstSynthetic: UInt32 = 0x4000_0000
        public static let syntheticCount: UInt32 = 0x100
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
