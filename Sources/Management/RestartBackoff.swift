/// The delay before an automatic restart: `initialBackoffMs` doubled per consecutive restart, at
/// most `maxBackoffMs`. A VM that ran `resetAfter` without ending starts again from the initial
/// delay.
struct RestartBackoff: Sendable, Equatable {
    static let resetAfterMs: Int64 = 60_000

    /// Restarts in a row without a long enough run in between.
    private(set) var consecutive = 0

    /// The delay for the next restart (and counts it).
    mutating func nextDelayMs(_ policy: RestartPolicy) -> Int {
        let initial = max(policy.initialBackoffMs, 0)
        let cap = max(policy.maxBackoffMs, initial)
        let shift = min(consecutive, 30)
        consecutive += 1
        let (doubled, overflow) = initial.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? cap : min(doubled, cap)
    }

    /// The VM ended after running `runningMs`: a long run forgets earlier failures.
    mutating func ended(afterRunningMs runningMs: Int64) {
        if runningMs >= Self.resetAfterMs { consecutive = 0 }
    }

    mutating func reset() { consecutive = 0 }

    /// Whether the policy restarts a VM that ended this way (`failed`: Failed rather than Off).
    static func shouldRestart(_ policy: RestartPolicy, failed: Bool) -> Bool {
        switch policy.mode {
        case .never: false
        case .onFailure: failed
        case .always: true
        }
    }
}
