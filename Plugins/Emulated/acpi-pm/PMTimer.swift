/// The ACPI power-management timer's count: 3.579545 MHz (the PC's 14.31818 MHz crystal divided
/// by 4), free-running. It is computed from the host clock when read instead of ticked, with
/// 128-bit intermediates so that neither the product of nanoseconds and frequency nor its
/// inverse overflows however long the VM runs.
struct PMTimer {
    static let frequency: UInt64 = 3_579_545
    static let nanosecondsPerSecond: UInt64 = 1_000_000_000

    /// The count at clock time `epoch`.
    private let base: UInt64
    private let epoch: UInt64

    init(count: UInt64, at now: UInt64) {
        base = count
        epoch = now
    }

    /// Full-width count at clock time `now` (the register shows its low 24 bits).
    func count(at now: UInt64) -> UInt64 {
        guard now > epoch else { return base }
        let product = (now - epoch).multipliedFullWidth(by: Self.frequency)
        // The high half is below `frequency`, so below the divisor: the quotient fits.
        let (ticks, _) = Self.nanosecondsPerSecond.dividingFullWidth(product)
        return base &+ ticks
    }

    /// The first clock time at which the count has reached `target`.
    func time(reaching target: UInt64) -> UInt64 {
        guard target > base else { return epoch }
        let product = (target - base).multipliedFullWidth(by: Self.nanosecondsPerSecond)
        guard product.high < Self.frequency else { return .max }
        let (quotient, remainder) = Self.frequency.dividingFullWidth(product)
        let (rounded, carry) = quotient.addingReportingOverflow(remainder == 0 ? 0 : 1)
        let (deadline, late) = epoch.addingReportingOverflow(rounded)
        return carry || late ? .max : deadline
    }
}
