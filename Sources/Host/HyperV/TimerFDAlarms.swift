import CKVM
import Synchronization

/// Synthetic-timer alarms on the event loop: one CLOCK_MONOTONIC timerfd per timer, created on
/// first use and watched by the loop, whose handler calls `fire(slot)`. 100 ns of reference time
/// are taken as 100 ns of host time; the timers re-check the reference clock when woken.
final class TimerFDAlarms: SyntheticTimerAlarms {
    private let events: EventLoop
    private let fds = Mutex<[Int: Int32]>([:])
    private let fire = Mutex<(@Sendable (Int) -> Void)?>(nil)
    private let logger: Logger

    init(events: EventLoop, logger: Logger) {
        self.events = events
        self.logger = logger
    }

    /// Set once, after the timers exist (they and their alarms refer to each other).
    func connect(_ handler: @escaping @Sendable (Int) -> Void) { fire.withLock { $0 = handler } }

    func arm(slot: Int, afterTicks ticks: UInt64) {
        guard let fd = timerFD(slot) else { return }
        let nanoseconds = ticks > UInt64.max / 200 ? UInt64.max / 2 : ticks * 100
        if ckvm_timerfd_arm(fd, EventLoop.now() &+ max(nanoseconds, 1), 0) != 0 {
            logger.log(.error, "stimer", "cannot arm the timerfd of synthetic timer \(slot): \(SystemError("timerfd_settime"))")
        }
    }

    func cancel(slot: Int) {
        guard let fd = fds.withLock({ $0[slot] }) else { return }
        _ = ckvm_timerfd_arm(fd, 0, 0)
    }

    private func timerFD(_ slot: Int) -> Int32? {
        fds.withLock { fds -> Int32? in
            if let fd = fds[slot] { return fd }
            let raw = ckvm_timerfd()
            guard raw >= 0 else {
                logger.log(.error, "stimer", "cannot create a timerfd for synthetic timer \(slot): \(SystemError("timerfd_create"))")
                return nil
            }
            guard events.watchCore(OwnedFD(raw), handler: { [weak self] in self?.fire.withLock { $0 }?(slot) }) == .ok else {
                logger.log(.error, "stimer", "cannot watch the timerfd of synthetic timer \(slot)")
                return nil
            }
            fds[slot] = raw
            return raw
        }
    }
}
