import CKVM
import Synchronization
import VMBusProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The Hyper-V partition interface of one VM, emulated in user space: the synthetic MSRs, the
/// hypercall page and its hypercalls, the SynIC of every VP, and the VMBus host behind them.
public final class HyperVPartition: Sendable {
    struct Registers {
        var guestOSID: UInt64 = 0
        var hypercall: UInt64 = 0
        var referenceTSC: UInt64 = 0
        /// The sequence last published in a reference TSC page.
        var tscSequence: UInt32 = 0
        /// HV_X64_MSR_TSC_INVARIANT_CONTROL: bit 0, once set, stays set.
        var tscInvariantControl: UInt64 = 0
        var vpAssist: [UInt64]
    }

    let vpCount: UInt32
    let memory: GuestMemory
    let synic: SynIC
    let timers: SyntheticTimers
    public let vmbus: VMBusHost
    /// Reference time: one scale and offset for the TSC page, TIME_REF_COUNT and the timers.
    let clock: ReferenceClock
    let features: HyperVFeatures
    /// Message and event connections devices own (ABI 1.4).
    let connections = HyperVConnections()
    private let refusals: MSRRefusalLog
    private let vm: VirtualMachineFD
    private let events: EventLoop
    private let logger: Logger
    private let registers: Mutex<Registers>
    let tscHz: UInt64

    /// `estimatedGuestTSC` gives the guest TSC from any thread, never ahead of it (see
    /// `GuestTSCOffset`); reference time is 0 where it stands now. `alarms` defaults to timerfds
    /// on `events`.
    init(vm: VirtualMachineFD, vpCount: UInt32, tscHz: UInt64, estimatedGuestTSC: @escaping @Sendable () -> UInt64,
         features: HyperVFeatures = HyperVFeatures(), memory: GuestMemory, interrupts: InterruptController,
         events: EventLoop, alarms: (any SyntheticTimerAlarms)? = nil, logger: Logger) throws(MachineError) {
        self.vm = vm
        self.vpCount = vpCount
        self.tscHz = tscHz
        self.memory = memory
        self.events = events
        self.logger = logger
        self.features = features
        guard let scale = ReferenceTimeScale(tscHz: tscHz, zeroAtTSC: estimatedGuestTSC()) else {
            throw .system(SystemError("guest TSC frequency \(tscHz) Hz is too low for Hyper-V reference time", errno: EINVAL))
        }
        clock = ReferenceClock(scale: scale, estimatedGuestTSC: estimatedGuestTSC)
        refusals = MSRRefusalLog(logger: logger)
        registers = Mutex(Registers(vpAssist: [UInt64](repeating: 0, count: Int(vpCount))))
        synic = SynIC(vpCount: vpCount, memory: memory, interrupts: interrupts, logger: logger)
        let timerAlarms = alarms ?? TimerFDAlarms(events: events, logger: logger)
        timers = SyntheticTimers(vpCount: vpCount, clock: clock, synic: synic, alarms: timerAlarms)
        if let fd = timerAlarms as? TimerFDAlarms {
            let timers = self.timers
            fd.connect { [weak timers] slot in timers?.fire(slot: slot) }   // the timers own their alarms
        }
        vmbus = VMBusHost(vpCount: vpCount, memory: memory, messages: synic, signaller: synic, log: logger)
    }

    /// Makes the synthetic MSR range exit to user space even where KVM would answer it itself.
    static func configure(_ vm: VirtualMachineFD) throws(KVMError) {
        try vm.enableCapability(UInt32(KVM_CAP_X86_USER_SPACE_MSR),
                                [UInt64(KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_INVAL)])
        try vm.denyMSRs(HyperVInterface.MSR.userSpaceRanges)
    }

    // MARK: MSRs

    /// nil: the access faults (#GP), like an MSR the hypervisor does not implement; refusals are
    /// logged at debug level. `guestTSC` reads the reading VP's time-stamp counter exactly (for
    /// TIME_REF_COUNT; without it the host-side estimate is used).
    public func readMSR(vp: UInt32, _ index: UInt32, guestTSC: () -> UInt64? = { nil }) -> UInt64? {
        let value = readSyntheticMSR(vp: vp, index, guestTSC: guestTSC)
        if value == nil { refusals.refused(vp: vp, msr: index, write: nil) }
        return value
    }

    private func readSyntheticMSR(vp: UInt32, _ index: UInt32, guestTSC: () -> UInt64?) -> UInt64? {
        typealias M = HyperVInterface.MSR
        switch index {
        case M.guestOSID: return registers.withLock { $0.guestOSID }
        case M.hypercall: return registers.withLock { $0.hypercall }
        case M.vpIndex: return vp < vpCount ? UInt64(vp) : nil
        case M.timeRefCount: return guestTSC().map { clock.scale.time(atTSC: $0) } ?? clock.now()
        case M.referenceTSC: return registers.withLock { $0.referenceTSC }
        case M.tscFrequency: return tscHz
        case M.apicFrequency: return HyperVInterface.apicFrequencyHz
        case M.vpAssistPage: return registers.withLock { Int(vp) < $0.vpAssist.count ? $0.vpAssist[Int(vp)] : nil }
        case M.tscInvariantControl where features.invariantTSC: return registers.withLock { $0.tscInvariantControl }
        case _ where SyntheticTimers.handles(index): return timers.read(vp: vp, msr: index)
        default: return synic.read(vp: vp, msr: index)
        }
    }

    /// False: the access faults (#GP); refusals are logged at debug level.
    public func writeMSR(vp: UInt32, _ index: UInt32, _ value: UInt64) -> Bool {
        let accepted = writeSyntheticMSR(vp: vp, index, value)
        if !accepted { refusals.refused(vp: vp, msr: index, write: value) }
        return accepted
    }

    private func writeSyntheticMSR(vp: UInt32, _ index: UInt32, _ value: UInt64) -> Bool {
        typealias M = HyperVInterface.MSR
        switch index {
        case M.guestOSID:
            registers.withLock { $0.guestOSID = value }
            return true
        case M.hypercall:
            return enableHypercallPage(value)
        case M.referenceTSC:
            return enableReferenceTSC(value)
        case M.vpAssistPage:
            return registers.withLock { r -> Bool in
                guard Int(vp) < r.vpAssist.count else { return false }
                r.vpAssist[Int(vp)] = value
                return true
            }
        case M.tscInvariantControl where features.invariantTSC:
            // Bit 0 exposes invariant TSC to the guest; reserved bits fault; once set it cannot be
            // cleared (the guest has already built its timekeeping on it).
            return registers.withLock { r -> Bool in
                guard value & ~1 == 0, value >= r.tscInvariantControl else { return false }
                r.tscInvariantControl = value
                return true
            }
        case M.vpIndex, M.timeRefCount, M.tscFrequency, M.apicFrequency:
            return false  // read-only
        case _ where SyntheticTimers.handles(index):
            return timers.write(vp: vp, msr: index, value: value)
        default:
            return synic.write(vp: vp, msr: index, value: value)
        }
    }

    /// 100 ns ticks since the partition started, as far as the host can tell (a lower bound of
    /// what the guest reads).
    func referenceTime() -> UInt64 { clock.now() }

    /// Bit 0 enables; bits 12+ name the page. The page gets the trampoline only once the guest OS
    /// id is set, as the TLFS requires; disabling leaves the page to the guest.
    private func enableHypercallPage(_ value: UInt64) -> Bool {
        let osID = registers.withLock { $0.guestOSID }
        let enable = value & 1 != 0 && osID != 0
        let page = value & ~0xFFF
        if enable {
            do { try memory.load(HypercallPage.code(), at: page) } catch {
                logger.log(.warning, "hyperv", "hypercall page \(hex(page)) is not guest RAM: refused")
                return false
            }
        }
        registers.withLock { $0.hypercall = page | (enable ? 1 : 0) }
        return true
    }

    /// The reference TSC page (`ReferenceTSCPage`). Enabling publishes the partition's one scale
    /// and offset: the sequence goes to 0 first (a vCPU reading meanwhile falls back to the MSR,
    /// which computes the same time), then scale and offset, then a new non-zero sequence with
    /// release ordering, so a guest's sequence/retry loop never mixes old and new values. The
    /// parameters never change while the partition runs (Veneer has no migration or TSC
    /// frequency change); a re-enable, at the same or another page, gets a fresh sequence.
    /// Disabling leaves the page to the guest.
    private func enableReferenceTSC(_ value: UInt64) -> Bool {
        let page = value & ~0xFFF
        if value & 1 != 0 {
            let scale = clock.scale
            let published = registers.withLock { r -> Bool in
                let sequence = ReferenceTSCPage.sequence(after: r.tscSequence)
                do {
                    try memory.storeRelease32(ReferenceTSCPage.invalidSequence, at: page + ReferenceTSCPage.sequenceOffset)
                    try memory.writeValue(scale.scale, at: page + ReferenceTSCPage.scaleOffset)
                    try memory.writeValue(UInt64(bitPattern: scale.offset), at: page + ReferenceTSCPage.offsetOffset)
                    try memory.storeRelease32(sequence, at: page + ReferenceTSCPage.sequenceOffset)
                } catch { return false }
                r.tscSequence = sequence
                return true
            }
            guard published else {
                logger.log(.warning, "hyperv", "reference TSC page \(hex(page)) is not guest RAM: refused")
                return false
            }
        }
        registers.withLock { $0.referenceTSC = value }
        return true
    }

    // MARK: hypercalls

    /// A hypercall through `hypercallPort`: RCX control, RDX input, R8 output; returns RAX.
    public func hypercall(vp: UInt32, control: UInt64, input: UInt64, output: UInt64) -> UInt64 {
        let code = UInt16(truncatingIfNeeded: control)
        let fast = control & (1 << 16) != 0
        let status: HypercallStatus
        switch (code, fast) {
        case (Hypercall.postMessage, false): status = postMessage(vp: vp, inputAddress: input)
        case (Hypercall.signalEvent, true):
            status = signalEvent(vp: vp, connectionID: UInt32(truncatingIfNeeded: input),
                                 flagNumber: UInt16(truncatingIfNeeded: input >> 32))
        case (Hypercall.postMessage, true), (Hypercall.signalEvent, false): status = .invalidHypercallInput
        default: status = .invalidHypercallCode
        }
        return UInt64(status.rawValue)
    }

    private func postMessage(vp: UInt32, inputAddress: UInt64) -> HypercallStatus {
        // 8-byte aligned and within one page, as the TLFS requires of hypercall input.
        guard inputAddress % 8 == 0, inputAddress % 4096 + UInt64(PostMessageInput.size) <= 4096 else { return .invalidAlignment }
        let bytes: [UInt8]
        do { bytes = try memory.bytes(inputAddress, count: PostMessageInput.size) } catch { return .invalidParameter }
        guard let input = try? PostMessageInput.decode(bytes) else { return .invalidParameter }
        if let device = connections.messageHandler(input.connectionID) {
            guard input.messageType != 0, input.messageType < 0x8000_0000 else { return .invalidParameter }
            return device.message(connectionID: input.connectionIDValue, vp: vp, messageType: input.messageType, payload: input.payload)
        }
        return vmbus.handlePostMessage(connectionID: input.connectionID, messageType: input.messageType,
                                       payload: input.payload, vp: vp)
    }

    /// A signal-port write the kernel did not absorb: a connection id with no open channel's
    /// ioeventfd (a device's own event connection, or none). The trampoline leaves the flag number
    /// in RDX bits 32-47. Returns the status the trampoline hands back.
    public func unmatchedSignal(vp: UInt32 = 0, connectionID: UInt32, flagNumber: UInt16 = 0) -> UInt64 {
        UInt64(signalEvent(vp: vp, connectionID: connectionID, flagNumber: flagNumber).rawValue)
    }

    /// HvSignalEvent: a device's event connection, else a VMBus channel's.
    private func signalEvent(vp: UInt32, connectionID: UInt32, flagNumber: UInt16) -> HypercallStatus {
        guard let device = connections.eventHandler(connectionID) else {
            return vmbus.handleSignalEvent(connectionID: connectionID, flagNumber: flagNumber)
        }
        // The SIEF page has 2048 flags per SINT; a connection's flag numbers are bounded the same way.
        guard flagNumber < 2048 else { return .invalidParameter }
        device.event(connectionID: connectionID & 0xFF_FFFF, vp: vp, flag: UInt32(flagNumber))
        return .success
    }

    // MARK: device connections (ABI 1.4)

    /// Queues a SynIC message from a device; false when the SINT's queue is full.
    public func postMessage(vp: UInt32, sint: UInt8, messageType: UInt32, payload: [UInt8]) -> Bool {
        synic.enqueue(vp: vp, sint: sint, SynICMessage(messageType: messageType, payload: payload), stamp: nil, delivered: nil) != nil
    }

    /// Sets an event flag for a device (and interrupts the VP if it was clear).
    public func signal(vp: UInt32, sint: UInt8, flag: UInt32) {
        synic.signal(vp: vp, sint: sint, eventFlag: flag)
    }

    // MARK: channels

    /// Registers a VSP's channel and its in-kernel signal path: while the channel is open, an
    /// ioeventfd on `signalPort` matching its connection id, read by the event loop. A closed
    /// channel has none, so its signals reach user space and get HV_STATUS_INVALID_CONNECTION_ID.
    public func register(offer: ChannelOffer, handler: any VMBusChannelHandler) throws(MachineError) -> VMBusChannel {
        let raw = ckvm_eventfd(1)
        guard raw >= 0 else { throw .system(SystemError("eventfd for a VMBus channel")) }
        let fd = OwnedFD(raw)
        let routing = SignalRouting(vm: vm, fd: fd, logger: logger, inner: handler, events: events)
        let channel: VMBusChannel
        do { channel = try vmbus.register(offer: offer, handler: routing) } catch {
            throw .memory("VMBus offer refused: \(error)")
        }
        try watchSignals(of: channel, fd)
        return channel
    }

    /// Offers `count` sub-channels of the open primary `primary`, each with its own in-kernel
    /// signal path; `handler` gets the events of all of them (it tells them apart by relid).
    public func registerSubchannels(of primary: VMBusChannel, count: Int,
                                    handler: any VMBusChannelHandler) throws(SubchannelOfferError) -> [VMBusChannel] {
        var fds: [OwnedFD] = []
        for _ in 0..<count {
            let raw = ckvm_eventfd(1)
            guard raw >= 0 else { throw .system(SystemError("eventfd for a VMBus sub-channel")) }
            fds.append(OwnedFD(raw))
        }
        let routings = fds.map { SignalRouting(vm: vm, fd: $0, logger: logger, inner: handler, events: events) }
        let channels: [VMBusChannel]
        do { channels = try vmbus.registerSubchannels(of: primary, handlers: routings) } catch {
            throw .refused(error)
        }
        for (channel, fd) in zip(channels, fds) {
            do throws(MachineError) { try watchSignals(of: channel, fd) } catch {
                // All or nothing: a sub-channel the guest could not signal must not stay offered.
                channels.forEach { vmbus.unregister($0) }
                throw .system(SystemError("watch VMBus sub-channel \(channel.relid)"))
            }
        }
        return channels
    }

    /// Withdraws a VSP's channel (hot remove): see `VMBusHost.unregister`. The signal paths of the
    /// channel and its sub-channels go with them (`SignalRouting.channelRetired`).
    public func unregister(_ channel: VMBusChannel) {
        vmbus.unregister(channel)
    }

    private func watchSignals(of channel: VMBusChannel, _ fd: OwnedFD) throws(MachineError) {
        let vmbus = self.vmbus, id = channel.connectionID
        guard events.watchCore(fd, handler: { [weak channel] in
            // A retired channel's relid (and connection id) may already be another channel's.
            guard let channel, !channel.isRetired else { return }
            _ = vmbus.handleSignalEvent(connectionID: id)
        }) == .ok else {
            throw .system(SystemError("watch VMBus channel \(channel.relid)"))
        }
    }
}

/// Why sub-channels could not be offered: the VMBus host refused (not an open primary, too
/// many), or the host ran out of eventfds.
public enum SubchannelOfferError: Error, CustomStringConvertible {
    case refused(VMBusHostError)
    case system(SystemError)

    public var description: String {
        switch self {
        case .refused(let e): e.description
        case .system(let e): e.description
        }
    }
}

/// Adds a channel's in-kernel signal path when the guest opens it and removes it when it closes,
/// then passes the event on to the VSP's handler.
final class SignalRouting: VMBusChannelHandler, Sendable {
    private let vm: VirtualMachineFD
    private let fd: OwnedFD
    private let logger: Logger
    private let inner: any VMBusChannelHandler
    private let events: EventLoop
    private let assigned = Mutex<UInt32?>(nil)

    init(vm: VirtualMachineFD, fd: OwnedFD, logger: Logger, inner: any VMBusChannelHandler, events: EventLoop) {
        self.vm = vm
        self.fd = fd
        self.logger = logger
        self.inner = inner
        self.events = events
    }

    func channelOpened(_ channel: VMBusChannel, userData: [UInt8]) -> Bool {
        let id = channel.connectionID
        do {
            try vm.addIOEventFD(fd.raw, address: UInt64(HyperVInterface.signalPort), length: 4, isPIO: true, value: UInt64(id))
        } catch {
            logger.log(.error, "vmbus", "channel \(channel.relid): cannot add its signal ioeventfd: \(error)")
            return false
        }
        assigned.withLock { $0 = id }
        guard inner.channelOpened(channel, userData: userData) else {
            removeSignalPath()
            return false
        }
        return true
    }

    func channelSignalled(_ channel: VMBusChannel) { inner.channelSignalled(channel) }

    func channelClosed(_ channel: VMBusChannel) {
        removeSignalPath()
        inner.channelClosed(channel)
    }

    /// The channel is gone for good: its eventfd leaves the event loop (which never holds its
    /// own lock while calling into VMBus, so taking it here under the VMBus lock is safe).
    func channelRetired(_ channel: VMBusChannel) {
        removeSignalPath()
        events.unwatchCore(fd)
        inner.channelRetired(channel)
    }

    private func removeSignalPath() {
        guard let id = assigned.withLock({ a in defer { a = nil }; return a }) else { return }
        do {
            try vm.removeIOEventFD(fd.raw, address: UInt64(HyperVInterface.signalPort), length: 4, isPIO: true, value: UInt64(id))
        } catch {
            logger.log(.error, "vmbus", "cannot remove the signal ioeventfd of connection \(id): \(error)")
        }
    }
}
