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
        var vpAssist: [UInt64]
    }

    let vpCount: UInt32
    let memory: GuestMemory
    let synic: SynIC
    public let vmbus: VMBusHost
    private let vm: VirtualMachineFD
    private let events: EventLoop
    private let logger: Logger
    private let registers: Mutex<Registers>
    private let startNanoseconds = EventLoop.now()
    let tscHz: UInt64

    init(vm: VirtualMachineFD, vpCount: UInt32, tscHz: UInt64, memory: GuestMemory,
         interrupts: InterruptController, events: EventLoop, logger: Logger) {
        self.vm = vm
        self.vpCount = vpCount
        self.tscHz = tscHz
        self.memory = memory
        self.events = events
        self.logger = logger
        registers = Mutex(Registers(vpAssist: [UInt64](repeating: 0, count: Int(vpCount))))
        synic = SynIC(vpCount: vpCount, memory: memory, interrupts: interrupts, logger: logger)
        vmbus = VMBusHost(vpCount: vpCount, memory: memory, messages: synic, signaller: synic, log: logger)
    }

    /// Makes the synthetic MSR range exit to user space even where KVM would answer it itself.
    static func configure(_ vm: VirtualMachineFD) throws(KVMError) {
        try vm.enableCapability(UInt32(KVM_CAP_X86_USER_SPACE_MSR),
                                [UInt64(KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_INVAL)])
        try vm.denyMSRs(first: HyperVInterface.MSR.firstSynthetic, count: HyperVInterface.MSR.syntheticCount)
    }

    // MARK: MSRs

    /// nil: the access faults (#GP), like an MSR the hypervisor does not implement.
    public func readMSR(vp: UInt32, _ index: UInt32) -> UInt64? {
        typealias M = HyperVInterface.MSR
        switch index {
        case M.guestOSID: return registers.withLock { $0.guestOSID }
        case M.hypercall: return registers.withLock { $0.hypercall }
        case M.vpIndex: return UInt64(vp)
        case M.timeRefCount: return referenceTime()
        case M.referenceTSC: return registers.withLock { $0.referenceTSC }
        case M.tscFrequency: return tscHz
        case M.apicFrequency: return HyperVInterface.apicFrequencyHz
        case M.vpAssistPage: return registers.withLock { Int(vp) < $0.vpAssist.count ? $0.vpAssist[Int(vp)] : 0 }
        default: return synic.read(vp: vp, msr: index)
        }
    }

    /// `guestTSC` reads the writing VP's time-stamp counter (only for the reference TSC page).
    public func writeMSR(vp: UInt32, _ index: UInt32, _ value: UInt64, guestTSC: () -> UInt64?) -> Bool {
        typealias M = HyperVInterface.MSR
        switch index {
        case M.guestOSID:
            registers.withLock { $0.guestOSID = value }
            return true
        case M.hypercall:
            return enableHypercallPage(value)
        case M.referenceTSC:
            return enableReferenceTSC(value, guestTSC: guestTSC)
        case M.vpAssistPage:
            registers.withLock { if Int(vp) < $0.vpAssist.count { $0.vpAssist[Int(vp)] = value } }
            return true
        case M.vpIndex, M.timeRefCount, M.tscFrequency, M.apicFrequency:
            return false  // read-only
        default:
            return synic.write(vp: vp, msr: index, value: value)
        }
    }

    /// 100 ns ticks since the partition started.
    func referenceTime() -> UInt64 { (EventLoop.now() - startNanoseconds) / 100 }

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

    /// The reference TSC page: {u32 sequence; u32 reserved; u64 scale; i64 offset}, reference time
    /// = ((tsc * scale) >> 64) + offset in 100 ns units.
    private func enableReferenceTSC(_ value: UInt64, guestTSC: () -> UInt64?) -> Bool {
        let page = value & ~0xFFF
        if value & 1 != 0 {
            guard tscHz > 0, let tsc = guestTSC() else { return false }
            let scale = UInt64((UInt128(10_000_000) << 64) / UInt128(tscHz))
            let scaled = UInt64((UInt128(tsc) * UInt128(scale)) >> 64)
            let offset = Int64(bitPattern: referenceTime() &- scaled)
            do {
                try memory.writeValue(UInt32(0), at: page)      // sequence 0: invalid while updating
                try memory.writeValue(scale, at: page + 8)
                try memory.writeValue(UInt64(bitPattern: offset), at: page + 16)
                try memory.storeRelease32(1, at: page)
            } catch {
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
            status = vmbus.handleSignalEvent(connectionID: UInt32(truncatingIfNeeded: input),
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
        return vmbus.handlePostMessage(connectionID: input.connectionID, messageType: input.messageType,
                                       payload: input.payload, vp: vp)
    }

    /// A signal-port write the kernel did not absorb: a connection id with no open channel's
    /// ioeventfd. Returns the status the trampoline hands back.
    public func unmatchedSignal(connectionID: UInt32) -> UInt64 {
        UInt64(vmbus.handleSignalEvent(connectionID: connectionID).rawValue)
    }

    // MARK: channels

    /// Registers a VSP's channel and its in-kernel signal path: while the channel is open, an
    /// ioeventfd on `signalPort` matching its connection id, read by the event loop. A closed
    /// channel has none, so its signals reach user space and get HV_STATUS_INVALID_CONNECTION_ID.
    public func register(offer: ChannelOffer, handler: any VMBusChannelHandler) throws(MachineError) -> VMBusChannel {
        let raw = ckvm_eventfd(1)
        guard raw >= 0 else { throw .system(SystemError("eventfd for a VMBus channel")) }
        let fd = OwnedFD(raw)
        let routing = SignalRouting(vm: vm, fd: fd, logger: logger, inner: handler)
        let channel: VMBusChannel
        do { channel = try vmbus.register(offer: offer, handler: routing) } catch {
            throw .memory("VMBus offer refused: \(error)")
        }
        let vmbus = self.vmbus, id = channel.connectionID
        guard events.watchCore(fd, handler: { _ = vmbus.handleSignalEvent(connectionID: id) }) == .ok else {
            throw .system(SystemError("watch VMBus channel \(channel.relid)"))
        }
        return channel
    }
}

/// Adds a channel's in-kernel signal path when the guest opens it and removes it when it closes,
/// then passes the event on to the VSP's handler.
final class SignalRouting: VMBusChannelHandler, Sendable {
    private let vm: VirtualMachineFD
    private let fd: OwnedFD
    private let logger: Logger
    private let inner: any VMBusChannelHandler
    private let assigned = Mutex<UInt32?>(nil)

    init(vm: VirtualMachineFD, fd: OwnedFD, logger: Logger, inner: any VMBusChannelHandler) {
        self.vm = vm
        self.fd = fd
        self.logger = logger
        self.inner = inner
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

    private func removeSignalPath() {
        guard let id = assigned.withLock({ a in defer { a = nil }; return a }) else { return }
        do {
            try vm.removeIOEventFD(fd.raw, address: UInt64(HyperVInterface.signalPort), length: 4, isPIO: true, value: UInt64(id))
        } catch {
            logger.log(.error, "vmbus", "cannot remove the signal ioeventfd of connection \(id): \(error)")
        }
    }
}
