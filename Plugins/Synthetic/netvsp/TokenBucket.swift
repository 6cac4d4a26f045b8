/// A bandwidth cap on guest-to-switch traffic: a bucket of `burst` bits refilled at `rate` bits per
/// second from the host clock. Time comes from the caller (the host's clock, which the harness
/// moves by hand), so its behaviour is deterministic under test.
struct TokenBucket: Sendable, Equatable {
    let bitsPerSecond: UInt64
    let burstBits: UInt64
    private(set) var tokens: UInt64
    private var lastRefill: UInt64?

    /// The burst is 10 ms of traffic, at least two jumbo frames so one always fits.
    init(bitsPerSecond: UInt64) {
        self.bitsPerSecond = max(bitsPerSecond, 1)
        burstBits = max(self.bitsPerSecond / 100, 2 * 9018 * 8)
        tokens = burstBits
    }

    /// Takes `bits` at time `now` (ns) if the bucket holds them; false: drop the frame.
    mutating func take(bits: UInt64, now: UInt64) -> Bool {
        if let last = lastRefill, now > last {
            let elapsed = now - last
            // bits = elapsed ns × rate / 1e9, without overflow for any sane rate and gap.
            let (high, low) = elapsed.multipliedFullWidth(by: bitsPerSecond)
            let refill = high >= 1_000_000_000 ? UInt64.max : UInt64(1_000_000_000).dividingFullWidth((high, low)).quotient
            // Whole bits only: a gap too short to earn one leaves the clock where it was.
            if refill > 0 {
                tokens = min(burstBits, tokens &+ min(refill, burstBits))
                lastRefill = now
            }
        } else if lastRefill == nil {
            lastRefill = now
        }
        guard tokens >= bits else { return false }
        tokens -= bits
        return true
    }
}
