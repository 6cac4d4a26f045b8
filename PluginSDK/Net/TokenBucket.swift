#if canImport(Glibc)
import Glibc
#endif

/// Where a rate limiter reads the time; tests drive it by hand.
public protocol MonotonicClock: Sendable {
    func nanoseconds() -> UInt64
}

/// CLOCK_MONOTONIC.
public struct SystemMonotonicClock: MonotonicClock {
    public init() {}
    public func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }
}

/// A port's bandwidth cap: a bucket of bits that fills at `bitsPerSecond` up to `burstBits`.
/// A frame passes whenever the bucket is not in debt and then takes its bits, possibly into
/// debt, so a 64 KiB segment is never stuck behind a small burst and the long-run rate still
/// holds. A value type: the caller serializes use (one per queue, or one behind the caller's lock).
public struct TokenBucket<Clock: MonotonicClock>: Sendable {
    public let bitsPerSecond: UInt64
    public let burstBits: UInt64
    private let clock: Clock
    /// Bits available; negative is debt.
    private var tokens: Int64
    private var lastRefill: UInt64

    /// `burstBits` defaults to 10 ms at the rate, and at least one 1514-byte frame.
    public init(bitsPerSecond: UInt64, burstBits: UInt64? = nil, clock: Clock) {
        let rate = max(bitsPerSecond, 1)
        self.bitsPerSecond = rate
        let burst = min(max(burstBits ?? rate / 100, 1514 * 8), UInt64(Int64.max / 2))
        self.burstBits = burst
        self.clock = clock
        tokens = Int64(burst)
        lastRefill = clock.nanoseconds()
    }

    /// True when a frame of `bytes` may go now (and it is charged); false to drop or hold it.
    public mutating func admit(bytes: Int) -> Bool {
        refill()
        guard tokens >= 0 else { return false }
        tokens -= Int64(min(max(bytes, 0), Int(Int32.max))) * 8
        return true
    }

    /// How long until a frame would pass (0 when one passes now): for a sender that waits.
    public mutating func nanosecondsUntilAdmit() -> UInt64 {
        refill()
        guard tokens < 0 else { return 0 }
        let debt = UInt64(-tokens)
        let wait = debt.multipliedFullWidth(by: 1_000_000_000)
        return bitsPerSecond.dividingFullWidth(wait).quotient + 1
    }

    private mutating func refill() {
        let now = clock.nanoseconds()
        guard now > lastRefill else { return }
        let missing = UInt64(Int64(burstBits) - tokens)  // tokens never exceed burstBits
        // Past the time that refills everything, the bucket is simply full (and no overflow).
        let elapsed = now - lastRefill
        let product = bitsPerSecond.multipliedFullWidth(by: elapsed)
        let earned: UInt64
        if product.high >= 1_000_000_000 {
            earned = missing
        } else {
            earned = min(UInt64(1_000_000_000).dividingFullWidth(product).quotient, missing)
        }
        tokens += Int64(earned)
        lastRefill = now
    }
}
