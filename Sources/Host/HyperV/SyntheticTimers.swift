import Synchronization
import VMBusProtocol

/// Where synthetic timers get their host-side wake-ups: `arm` asks for `fire(slot:)` after about
/// `ticks` of 100 ns, `cancel` withdraws it. A wake-up may come early or late (host and reference
/// time run at slightly different rates); the timers check the reference clock themselves.
protocol SyntheticTimerAlarms: Sendable {
    func arm(slot: Int, afterTicks ticks: UInt64)
    func cancel(slot: Int)
}

/// STIMER0-3 of every VP (TLFS "Synthetic Timers"): config and count MSRs, one-shot and
/// periodic, auto-enable, message mode (HVMSG_TIMER_EXPIRED in the SINT's slot, carrying the
/// expiration and delivery times) and direct mode (a fixed interrupt with the timer's own vector).
///
/// Rules, as Linux and Windows guests rely on them (and as KVM implements them):
/// - A count write stops the timer; count 0 disables it, a non-zero count enables it when
///   auto-enable is set. A config write stops it too; a message-mode timer with SINT 0 stays off.
/// - One-shot: count is the absolute expiration in reference time; a past one expires at once.
///   Enable clears once the expiration is delivered. A busy slot keeps the message queued until
///   the guest's EOM frees it.
/// - Periodic: count is the period; ticks missed while the host was late are coalesced into one
///   (the "lazy" policy for all periodic timers), and a tick whose previous message still waits
///   for the slot is dropped rather than piled up.
///
/// Expirations happen on the event thread through `alarms`, never before the reference clock
/// (a lower bound of the guest's) has reached them.
final class SyntheticTimers: Sendable {
    static let perVP = 4
    static let firstMSR: UInt32 = 0x4000_00B0     // STIMER0_CONFIG; COUNT follows; 2 MSRs per timer
    static let lastMSR: UInt32 = 0x4000_00B7

    struct Timer: Sendable {
        var config = SyntheticTimerConfig(rawValue: 0)
        var count: UInt64 = 0
        /// Reference time of the next expiration; 0 while stopped.
        var expiration: UInt64 = 0
        /// The expiration message waiting in the SynIC queue: our token and the SynIC's id.
        var messageToken: UInt64?
        var messageID: UInt64?
    }

    private let timers: Mutex<[Timer]>
    private let tokens = Atomic<UInt64>(1)
    private let clock: ReferenceClock
    private let synic: SynIC
    private let alarms: any SyntheticTimerAlarms
    private let vpCount: UInt32

    init(vpCount: UInt32, clock: ReferenceClock, synic: SynIC, alarms: any SyntheticTimerAlarms) {
        self.vpCount = vpCount
        self.clock = clock
        self.synic = synic
        self.alarms = alarms
        timers = Mutex([Timer](repeating: Timer(), count: Int(vpCount) * Self.perVP))
    }

    static func handles(_ msr: UInt32) -> Bool { (firstMSR...lastMSR).contains(msr) }

    private func slot(vp: UInt32, msr: UInt32) -> (slot: Int, isCount: Bool)? {
        guard vp < vpCount, Self.handles(msr) else { return nil }
        let n = Int(msr - Self.firstMSR)
        return (Int(vp) * Self.perVP + n / 2, n % 2 == 1)
    }

    func read(vp: UInt32, msr: UInt32) -> UInt64? {
        guard let (slot, isCount) = slot(vp: vp, msr: msr) else { return nil }
        return timers.withLock { isCount ? $0[slot].count : $0[slot].config.rawValue }
    }

    /// A guest write of STIMERx_CONFIG or STIMERx_COUNT; false: the access faults.
    func write(vp: UInt32, msr: UInt32, value: UInt64) -> Bool {
        guard let (slot, isCount) = slot(vp: vp, msr: msr) else { return false }
        let now = clock.now()
        let stale = timers.withLock { t -> (id: UInt64?, sint: UInt8) in
            let stale = (t[slot].messageID, t[slot].config.sint)
            t[slot].expiration = 0
            t[slot].messageToken = nil
            t[slot].messageID = nil
            if isCount {
                t[slot].count = value
                if value == 0 { t[slot].config.enabled = false } else if t[slot].config.autoEnable { t[slot].config.enabled = true }
            } else {
                var config = SyntheticTimerConfig(rawValue: value)
                if config.enabled, !config.directMode, config.sint == 0 { config.enabled = false }
                t[slot].config = config
            }
            return stale
        }
        alarms.cancel(slot: slot)
        if let id = stale.id { _ = synic.withdraw(vp: vp, sint: stale.sint, id: id) }
        start(slot: slot, now: now)
        return true
    }

    /// Schedules an enabled timer's next expiration (or expires it at once).
    private func start(slot: Int, now: UInt64) {
        let wait = timers.withLock { t -> UInt64? in
            guard t[slot].config.enabled, t[slot].count != 0 else { return nil }
            if t[slot].config.periodic {
                let period = t[slot].count
                if t[slot].expiration == 0 {
                    t[slot].expiration = now &+ period
                } else if now >= t[slot].expiration {
                    t[slot].expiration = now &+ (period - (now - t[slot].expiration) % period)
                }
            } else {
                t[slot].expiration = t[slot].count
            }
            return t[slot].expiration > now ? t[slot].expiration - now : 0
        }
        guard let wait else { return }
        if wait == 0 { fire(slot: slot) } else { alarms.arm(slot: slot, afterTicks: wait) }
    }

    /// The alarm of `slot` went off (event thread), or a one-shot count was already in the past.
    func fire(slot: Int) {
        guard slot >= 0, slot < Int(vpCount) * Self.perVP else { return }
        let now = clock.now()
        enum Step { case none, rearm(UInt64), expire(Timer) }
        let step = timers.withLock { t -> Step in
            let timer = t[slot]
            guard timer.config.enabled, timer.expiration != 0 else { return .none }
            if now < timer.expiration { return .rearm(timer.expiration - now) }
            return .expire(timer)
        }
        switch step {
        case .none: return
        case .rearm(let ticks): alarms.arm(slot: slot, afterTicks: ticks)
        case .expire(let timer): expire(slot: slot, timer)
        }
    }

    private func expire(slot: Int, _ timer: Timer) {
        let vp = UInt32(slot / Self.perVP), index = UInt32(slot % Self.perVP)
        let periodic = timer.config.periodic
        if timer.config.directMode {
            synic.sendVector(vp: vp, vector: timer.config.apicVector)
            // Unless the guest re-programmed the timer meanwhile, a one-shot is done.
            timers.withLock { t in
                guard !periodic, t[slot].expiration == timer.expiration, t[slot].config == timer.config else { return }
                t[slot].config.enabled = false
                t[slot].expiration = 0
            }
        } else if timer.messageToken == nil {
            let token = tokens.wrappingAdd(1, ordering: .relaxed).oldValue
            timers.withLock { $0[slot].messageToken = token }
            let expiration = timer.expiration, clock = self.clock
            let message = SynICMessage(messageType: TimerExpiredMessage.messageType,
                                       payload: TimerExpiredMessage(timerIndex: index, expirationTime: expiration, deliveryTime: 0).encode())
            let id = synic.enqueue(vp: vp, sint: timer.config.sint, message,
                stamp: { message in
                    message.payload = TimerExpiredMessage(timerIndex: index, expirationTime: expiration,
                                                          deliveryTime: max(clock.now(), expiration)).encode()
                },
                delivered: { [weak self] in self?.delivered(slot: slot, token: token) })
            timers.withLock { t in
                guard t[slot].messageToken == token else { return }
                if let id { t[slot].messageID = id } else { t[slot].messageToken = nil }
            }
        }
        // else: a periodic tick whose previous message still waits for the slot: dropped.
        if periodic { start(slot: slot, now: clock.now()) }
    }

    /// The expiration message of `token` reached its slot: a one-shot timer is done.
    private func delivered(slot: Int, token: UInt64) {
        timers.withLock { t in
            guard t[slot].messageToken == token else { return }
            t[slot].messageToken = nil
            t[slot].messageID = nil
            if !t[slot].config.periodic {
                t[slot].config.enabled = false
                t[slot].expiration = 0
            }
        }
    }
}
