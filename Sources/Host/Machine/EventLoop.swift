import CKVM
import Synchronization
import VeneerPluginABI
#if canImport(Glibc)
import Glibc
#endif

/// The VM's event thread: device timers (one timerfd each), fd watches, posted work and
/// termination signals, all through one epoll set. Device callbacks run here with the device's
/// lock taken by `PluginDevice`, never with the loop's own lock held, so a callback may arm,
/// cancel, watch or post freely.
///
/// epoll refuses regular files (EPERM), which poll(2), the ABI's model for fd_watch, reports as
/// always ready. Such watches are kept aside and reported ready on every turn of the loop, which
/// then does not block: a plugin reading a file input reads it to its end and unwatches it.
public final class EventLoop: Sendable {
    private enum Source {
        case timer(PluginDevice, token: UInt64, fd: OwnedFD)
        case watch(PluginDevice, token: UInt64, fd: Int32)
        case wake
        case signals(OwnedFD)
        /// A core-owned fd (e.g. a VMBus channel's signal eventfd) and what to do when readable.
        case core(OwnedFD, @Sendable () -> Void)
    }

    private struct TimerKey: Hashable {
        let device: ObjectIdentifier
        let token: UInt64
    }

    private struct State {
        var sources: [UInt64: Source] = [:]
        var timers: [TimerKey: UInt64] = [:]
        var watches: [Int32: UInt64] = [:]
        /// Watches of fds epoll cannot poll, by key: the events the device asked for.
        var alwaysReady: [UInt64: UInt32] = [:]
        var posted: [(PluginDevice, UInt64)] = []
        /// How each device timer was last armed, by source key (absent: disarmed).
        var arms: [UInt64: TimerFreeze.Arm] = [:]
        /// While paused: the device timers to start again on resume, with their time left.
        var frozen: [UInt64: (remaining: UInt64, period: UInt64)]?
        var closures: [@Sendable () -> Void] = []
        var nextKey: UInt64 = 16
    }

    private static let wakeKey: UInt64 = 1
    private static let signalKey: UInt64 = 2

    private let epoll: OwnedFD
    private let wake: OwnedFD
    private let state = Mutex(State())
    private let running = Atomic<Bool>(true)
    private let stop: StopController

    public init(stop: StopController) throws(SystemError) {
        let ep = ckvm_epoll_create()
        guard ep >= 0 else { throw SystemError("epoll_create1") }
        epoll = OwnedFD(ep)
        let w = ckvm_eventfd(1)
        guard w >= 0 else { throw SystemError("eventfd") }
        wake = OwnedFD(w)
        self.stop = stop
        guard ckvm_epoll_add(ep, w, UInt32(VENEER_FD_READABLE), Self.wakeKey) == 0 else { throw SystemError("epoll add eventfd") }
    }

    /// Routes SIGINT/SIGTERM/SIGHUP to a clean stop, and SIGUSR1 to a report of every vCPU's
    /// registers (what is my guest doing?) while it keeps running. Call before creating other threads so they
    /// inherit the blocked mask.
    public func handleTerminationSignals() throws(SystemError) {
        let fd = ckvm_termination_signalfd()
        guard fd >= 0 else { throw SystemError("signalfd") }
        let owned = OwnedFD(fd)
        guard ckvm_epoll_add(epoll.raw, fd, UInt32(VENEER_FD_READABLE), Self.signalKey) == 0 else { throw SystemError("epoll add signalfd") }
        state.withLock { $0.sources[Self.signalKey] = .signals(owned) }
    }

    public static func now() -> UInt64 { ckvm_monotonic_ns() }

    // MARK: services for devices

    public func armTimer(_ device: PluginDevice, token: UInt64, deadline: UInt64, period: UInt64) -> veneer_status {
        let key = TimerKey(device: ObjectIdentifier(device), token: token)
        return state.withLock { s -> veneer_status in
            let k: UInt64
            let fd: Int32
            if let existing = s.timers[key], case .timer(_, _, let owned)? = s.sources[existing] {
                k = existing
                fd = owned.raw
            } else {
                let raw = ckvm_timerfd()
                guard raw >= 0 else { return .ioError }
                let owned = OwnedFD(raw)
                k = s.nextKey
                s.nextKey += 1
                guard ckvm_epoll_add(epoll.raw, raw, UInt32(VENEER_FD_READABLE), k) == 0 else { return .ioError }
                s.sources[k] = .timer(device, token: token, fd: owned)
                s.timers[key] = k
                fd = raw
            }
            let arm = TimerFreeze.Arm(deadline: deadline, period: period)
            if s.frozen != nil {
                // Paused: the deadline counts from now, and the timer starts on resume.
                s.frozen?[k] = (TimerFreeze.remaining(arm, now: Self.now(), undelivered: false) ?? 0, period)
                return .ok
            }
            guard ckvm_timerfd_arm(fd, deadline, period) == 0 else { return .ioError }
            s.arms[k] = arm
            return .ok
        }
    }

    public func cancelTimer(_ device: PluginDevice, token: UInt64) -> veneer_status {
        let key = TimerKey(device: ObjectIdentifier(device), token: token)
        state.withLock { s in
            guard let k = s.timers[key], case .timer(_, _, let fd)? = s.sources[k] else { return }
            s.arms[k] = nil
            s.frozen?[k] = nil
            _ = ckvm_timerfd_arm(fd.raw, 0, 0)
            var drain: UInt64 = 0
            _ = Glibc.read(fd.raw, &drain, 8)
        }
        return .ok
    }

    public func watch(_ device: PluginDevice, fd: Int32, events: UInt32, token: UInt64) -> veneer_status {
        guard fd >= 0 else { return .invalid }
        let mask = events & UInt32(VENEER_FD_READABLE | VENEER_FD_WRITABLE)
        return state.withLock { s -> veneer_status in
            if let k = s.watches[fd] {
                guard case .watch(let owner, _, _)? = s.sources[k], owner === device else { return .busy }
                s.sources[k] = .watch(device, token: token, fd: fd)
                if s.alwaysReady[k] != nil {
                    s.alwaysReady[k] = mask
                    return .ok
                }
                return ckvm_epoll_modify(epoll.raw, fd, mask, k) == 0 ? .ok : .ioError
            }
            let k = s.nextKey
            s.nextKey += 1
            if ckvm_epoll_add(epoll.raw, fd, mask, k) != 0 {
                guard errno == EPERM else { return .ioError }
                s.alwaysReady[k] = mask
            }
            s.sources[k] = .watch(device, token: token, fd: fd)
            s.watches[fd] = k
            return .ok
        }
    }

    public func unwatch(_ device: PluginDevice, fd: Int32) -> veneer_status {
        state.withLock { s -> veneer_status in
            guard let k = s.watches[fd], case .watch(let owner, _, _)? = s.sources[k], owner === device else { return .invalid }
            if s.alwaysReady.removeValue(forKey: k) == nil { _ = ckvm_epoll_remove(epoll.raw, fd) }
            s.watches.removeValue(forKey: fd)
            s.sources.removeValue(forKey: k)
            return .ok
        }
    }

    /// Thread-safe.
    public func post(_ device: PluginDevice, token: UInt64) -> veneer_status {
        state.withLock { $0.posted.append((device, token)) }
        var one: UInt64 = 1
        _ = Glibc.write(wake.raw, &one, 8)
        return .ok
    }

    /// Runs `handler` on the event thread whenever `fd` is readable; the loop owns the fd.
    public func watchCore(_ fd: OwnedFD, handler: @escaping @Sendable () -> Void) -> veneer_status {
        state.withLock { s -> veneer_status in
            let k = s.nextKey
            s.nextKey += 1
            guard ckvm_epoll_add(epoll.raw, fd.raw, UInt32(VENEER_FD_READABLE), k) == 0 else { return .ioError }
            s.sources[k] = .core(fd, handler)
            return .ok
        }
    }

    /// Stops watching a core-owned fd (a withdrawn VMBus channel's). Thread-safe; a dispatch
    /// already under way may still run its handler once.
    public func unwatchCore(_ fd: OwnedFD) {
        state.withLock { s in
            guard let k = s.sources.first(where: { if case .core(let f, _) = $0.value { f === fd } else { false } })?.key else { return }
            _ = ckvm_epoll_remove(epoll.raw, fd.raw)
            s.sources.removeValue(forKey: k)
        }
    }

    /// Runs `closure` on the event thread, in order with posted work. Thread-safe.
    public func enqueue(_ closure: @escaping @Sendable () -> Void) {
        state.withLock { $0.closures.append(closure) }
        var one: UInt64 = 1
        _ = Glibc.write(wake.raw, &one, 8)
    }

    /// Forgets everything a device registered (it is being destroyed).
    public func removeAll(for device: PluginDevice) {
        state.withLock { s in
            for (k, source) in s.sources {
                switch source {
                case .timer(let d, let token, _) where d === device:
                    s.sources.removeValue(forKey: k)
                    s.arms[k] = nil
                    s.frozen?[k] = nil
                    s.timers.removeValue(forKey: TimerKey(device: ObjectIdentifier(d), token: token))
                case .watch(let d, _, let fd) where d === device:
                    if s.alwaysReady.removeValue(forKey: k) == nil { _ = ckvm_epoll_remove(epoll.raw, fd) }
                    s.sources.removeValue(forKey: k)
                    s.watches.removeValue(forKey: fd)
                default: break
                }
            }
            s.posted.removeAll { $0.0 === device }
        }
    }

    // MARK: pause

    /// Whether device timers are frozen (between `freezeTimers` and `thawTimers`).
    public var timersFrozen: Bool { state.withLock { $0.frozen != nil } }

    /// Stops every device timer, keeping the time each had left (`TimerFreeze`). Call on the event
    /// thread, so no timer callback is half-way through; a timer that expired but was not yet
    /// delivered is delivered right after `thawTimers`.
    public func freezeTimers() {
        state.withLock { s in
            guard s.frozen == nil else { return }
            let now = Self.now()
            var frozen: [UInt64: (remaining: UInt64, period: UInt64)] = [:]
            for (k, arm) in s.arms {
                guard case .timer(_, _, let fd)? = s.sources[k] else { continue }
                _ = ckvm_timerfd_arm(fd.raw, 0, 0)
                var expirations: UInt64 = 0
                let undelivered = Glibc.read(fd.raw, &expirations, 8) == 8 && expirations > 0
                if let left = TimerFreeze.remaining(arm, now: now, undelivered: undelivered) {
                    frozen[k] = (left, arm.period)
                }
            }
            s.arms = [:]
            s.frozen = frozen
        }
    }

    /// Starts the frozen timers again from where they stopped. Any thread.
    public func thawTimers() {
        state.withLock { s in
            guard let frozen = s.frozen else { return }
            s.frozen = nil
            let now = Self.now()
            for (k, f) in frozen {
                guard case .timer(_, _, let fd)? = s.sources[k] else { continue }
                let arm = TimerFreeze.resumed(remaining: f.remaining, period: f.period, now: now)
                if ckvm_timerfd_arm(fd.raw, arm.deadline, arm.period) == 0 { s.arms[k] = arm }
            }
        }
    }

    // MARK: the loop

    public func run() {
        var tokens = [UInt64](repeating: 0, count: 32)
        var events = [UInt32](repeating: 0, count: 32)
        while running.load(ordering: .acquiring) {
            let ready = state.withLock { $0.alwaysReady.keys.sorted() }
            let n = ckvm_epoll_wait(epoll.raw, &tokens, &events, 32, ready.isEmpty ? -1 : 0)
            if n < 0 {
                if errno == EINTR { continue }
                stop.request(.deviceError("event loop: \(SystemError("epoll_wait"))"))
                return
            }
            for i in 0..<Int(n) { dispatch(tokens[i], events[i]) }
            for k in ready {
                // An earlier callback may have unwatched it.
                guard let mask = state.withLock({ $0.alwaysReady[k] }) else { continue }
                dispatch(k, mask)
            }
        }
    }

    private func dispatch(_ key: UInt64, _ revents: UInt32) {
        if key == Self.wakeKey {
            var value: UInt64 = 0
            _ = Glibc.read(wake.raw, &value, 8)
            let (work, closures) = state.withLock { s in
                defer { s.posted.removeAll(); s.closures.removeAll() }
                return (s.posted, s.closures)
            }
            for closure in closures { closure() }
            for (device, token) in work { device.workPosted(token: token) }
            return
        }
        guard let source = state.withLock({ $0.sources[key] }) else { return }
        switch source {
        case .timer(let device, let token, let fd):
            var expirations: UInt64 = 0
            guard Glibc.read(fd.raw, &expirations, 8) == 8 else { return }
            device.timerFired(token: token)
        case .watch(let device, let token, _):
            device.fdReady(token: token, events: revents & 0x1D)
        case .signals(let fd):
            let signal = ckvm_read_signal(fd.raw)
            if signal == SIGUSR1 {
                stop.requestStateReport()
            } else if signal > 0 {
                stop.request(.interrupted(signal))
            }
        case .core(let fd, let handler):
            var value: UInt64 = 0
            _ = Glibc.read(fd.raw, &value, 8)
            handler()
        case .wake:
            break
        }
    }

    /// Ends `run()` from any thread.
    public func shutdown() {
        running.store(false, ordering: .releasing)
        var one: UInt64 = 1
        _ = Glibc.write(wake.raw, &one, 8)
    }
}
