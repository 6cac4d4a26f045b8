import CKVM

/// The partition's reference time, in 100 ns units, as ONE function of the guest TSC:
/// time = ((tsc * scale) >> 64) + offset (64.64 fixed point, the TLFS reference TSC formula).
/// The TSC page publishes exactly this scale and offset and TIME_REF_COUNT evaluates exactly this
/// formula on the reading vCPU's TSC, so the two agree to the tick and an MSR read can never land
/// behind a page read taken before it.
///
/// The scale comes from KVM's guest TSC frequency (KVM_GET_TSC_KHZ: whole kHz from the host
/// kernel's calibration). The true frequency is not knowable exactly, so reference time may run
/// fast or slow against real time by that calibration error (typically a few ppm); page, MSR and
/// synthetic timers still agree with each other exactly, which is what a guest relies on. Wall-
/// clock drift is the time-sync integration service's job.
public struct ReferenceTimeScale: Equatable, Sendable {
    public let scale: UInt64
    public let offset: Int64

    public init(scale: UInt64, offset: Int64) {
        self.scale = scale
        self.offset = offset
    }

    /// The scale for `tscHz`, with reference time 0 at guest TSC `zeroAtTSC`. Nil below 10 MHz,
    /// where 10^7 / tscHz no longer fits the 64-bit fraction.
    public init?(tscHz: UInt64, zeroAtTSC tsc: UInt64) {
        guard tscHz > 10_000_000 else { return nil }
        scale = UInt64((UInt128(10_000_000) << 64) / UInt128(tscHz))
        offset = Int64(bitPattern: 0 &- UInt64(truncatingIfNeeded: (UInt128(tsc) * UInt128(scale)) >> 64))
    }

    /// Reference time at guest TSC `tsc`, computed as the guest computes it from the page.
    @inline(__always)
    public func time(atTSC tsc: UInt64) -> UInt64 {
        UInt64(truncatingIfNeeded: (UInt128(tsc) * UInt128(scale)) >> 64) &+ UInt64(bitPattern: offset)
    }
}

/// Reference time for code that runs outside a vCPU (synthetic timers on the event thread),
/// where the guest TSC cannot be read exactly: the host TSC plus a calibrated offset. The offset
/// is a lower bound, so this clock is never ahead of the guest's: a timer that waits until it says
/// "expired" never fires early as the guest sees it.
public struct ReferenceClock: Sendable {
    public let scale: ReferenceTimeScale
    private let estimatedGuestTSC: @Sendable () -> UInt64

    public init(scale: ReferenceTimeScale, estimatedGuestTSC: @escaping @Sendable () -> UInt64) {
        self.scale = scale
        self.estimatedGuestTSC = estimatedGuestTSC
    }

    public func now() -> UInt64 { scale.time(atTSC: estimatedGuestTSC()) }
}

/// The guest TSC as the host TSC plus a fixed offset, measured before the vCPUs run.
///
/// Veneer never sets a TSC frequency, so KVM runs the guest TSC at the host rate (no scaling) and
/// the guest TSC is host TSC + KVM's offset. Each sample reads the host TSC, then the guest TSC
/// through KVM_GET_MSRS (which evaluates it inside the ioctl), then the host TSC again: the true
/// offset is at least guest - host_after. The largest such bound over a few samples is kept.
/// A guest that writes its own TSC moves KVM's offset and leaves this estimate behind (timers then
/// fire late, never early); TIME_REF_COUNT and the page do not depend on it.
enum GuestTSCOffset {
    static func measure(_ cpu: VCPUFD, samples: Int = 8) throws(KVMError) -> Int64 {
        var best = Int64.min
        for _ in 0..<samples {
            let guest = try cpu.msr(0x10)
            let after = ckvm_rdtsc()
            best = max(best, Int64(bitPattern: guest &- after))
        }
        return best
    }
}
