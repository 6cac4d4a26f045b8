/// The PIT's input clock, 1.193182 MHz, derived from the host's nanosecond clock.
///
/// Ticks are numbered on one global timeline (tick k is the k-th CLK edge since host time 0), so
/// "how many edges between two instants" is a subtraction and no per-edge work is ever done.
/// Tick arithmetic elsewhere wraps (`&+`, `&-`) and compares through signed differences, because
/// a counter's reference tick may lie before host time 0 after a state load on a young host.
enum PITClock {
    static let hertz: UInt64 = 1_193_182
    static let nanosecondsPerSecond: UInt64 = 1_000_000_000

    /// The number of CLK edges at or before host time `ns`.
    static func tick(atNanoseconds ns: UInt64) -> UInt64 {
        let product = ns.multipliedFullWidth(by: hertz)
        // The quotient is below `ns`, so it cannot overflow.
        return nanosecondsPerSecond.dividingFullWidth((product.high, product.low)).quotient
    }

    /// The first host time at which `tick(atNanoseconds:)` reaches `tick`; saturates far in the future.
    static func nanoseconds(atTick tick: UInt64) -> UInt64 {
        guard tick <= lastRepresentableTick else { return .max }
        let product = tick.multipliedFullWidth(by: nanosecondsPerSecond)
        let (quotient, remainder) = hertz.dividingFullWidth((product.high, product.low))
        return remainder == 0 ? quotient : quotient + 1
    }

    /// Ticks past this one would start after `UInt64.max` ns.
    static let lastRepresentableTick = tick(atNanoseconds: .max) - 1

    /// `a - b` as a signed distance (ticks stay far below 2^63 apart).
    static func distance(from b: UInt64, to a: UInt64) -> Int64 { Int64(bitPattern: a &- b) }
}
