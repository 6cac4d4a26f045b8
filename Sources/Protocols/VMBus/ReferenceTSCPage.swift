/// The reference TSC page (TLFS "Partition Reference TSC Mechanism"; Linux
/// `struct ms_hyperv_tsc_page`): u32 tsc_sequence at 0, u32 reserved at 4, u64 tsc_scale at 8,
/// i64 tsc_offset at 16; the rest of the 4 KiB page is reserved. A guest computes
/// reference time = ((tsc * tsc_scale) >> 64) + tsc_offset in 100 ns units, reading the sequence
/// before and after and retrying when it changed; sequence 0 means "not valid, read the
/// TIME_REF_COUNT MSR instead".
public enum ReferenceTSCPage {
    public static let sequenceOffset: UInt64 = 0
    public static let scaleOffset: UInt64 = 8
    public static let offsetOffset: UInt64 = 16
    /// The page is not valid (the guest falls back to the MSR).
    public static let invalidSequence: UInt32 = 0

    /// The sequence to publish after `previous`: never 0 (invalid) and never 0xFFFFFFFF, which
    /// older TLFS versions also reserve as invalid, so a guest that cached either never mistakes
    /// new parameters for old ones.
    public static func sequence(after previous: UInt32) -> UInt32 {
        let next = previous &+ 1
        return next == 0 || next == 0xFFFF_FFFF ? 1 : next
    }
}
