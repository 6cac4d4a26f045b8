/// The arithmetic of freezing a device timer while the VM is paused and starting it again on
/// resume: the time left is kept, and a periodic timer resumes on its own cadence with the periods
/// that fell inside the pause dropped, never replayed.
public enum TimerFreeze {
    /// How a timer was armed: absolute CLOCK_MONOTONIC deadline and period (0: one-shot), in ns.
    public struct Arm: Sendable, Equatable {
        public var deadline: UInt64
        public var period: UInt64
        public init(deadline: UInt64, period: UInt64) {
            self.deadline = deadline
            self.period = period
        }
    }

    /// Time left at `now` until the timer's next expiry, or nil when it has nothing left to do (a
    /// one-shot that already fired and was delivered). `undelivered`: it expired but the device
    /// has not been told yet; it is told right after the resume (remaining 0), once.
    public static func remaining(_ arm: Arm, now: UInt64, undelivered: Bool) -> UInt64? {
        if undelivered { return 0 }
        if arm.deadline > now { return arm.deadline - now }
        guard arm.period > 0 else { return nil }
        // The kernel re-arms a periodic timerfd at deadline + k * period: the next of those.
        let into = (now - arm.deadline) % arm.period
        return into == 0 ? 0 : arm.period - into
    }

    /// The arm to use on resume at `now` for a timer frozen with `remaining` left.
    public static func resumed(remaining: UInt64, period: UInt64, now: UInt64) -> Arm {
        let (deadline, overflow) = now.addingReportingOverflow(remaining)
        return Arm(deadline: overflow ? .max : max(deadline, 1), period: period)
    }
}
