import Synchronization
import VMBusProtocol

/// The synthetic interrupt controller of every virtual processor: SINT registers, the message
/// page (one 256-byte slot per SINT, with queueing and the pending/EOM protocol) and the event
/// flags page, with SINT delivery as fixed MSIs to the VP's local APIC.
///
/// Everything here touches pages the guest owns and may change at any moment: slots and flags are
/// re-read, never trusted, and a page outside RAM makes delivery wait (the message stays queued).
final class SynIC: SynICMessageSink, GuestSignaller, Sendable {
    struct VP {
        var scontrol: UInt64 = 0
        var simp: UInt64 = 0
        var siefp: UInt64 = 0
        var sint = [UInt64](repeating: 1 << 16, count: 16)      // masked at power-on
        var queues = [[Queued]](repeating: [], count: 16)

        var messagePage: UInt64? { scontrol & 1 != 0 && simp & 1 != 0 ? simp & ~0xFFF : nil }
        var eventPage: UInt64? { scontrol & 1 != 0 && siefp & 1 != 0 ? siefp & ~0xFFF : nil }
    }

    /// A message waiting for its slot. `stamp` fills in what describes the delivery (a timer
    /// message's delivery time) just before it is written; `delivered` runs once it is in the slot.
    /// Both run with the flush lock held and must not call back into the SynIC.
    struct Queued: Sendable {
        let id: UInt64
        let message: SynICMessage
        let stamp: (@Sendable (inout SynICMessage) -> Void)?
        let delivered: (@Sendable () -> Void)?
    }

    static let maxQueuedPerSINT = 256

    private let nextID = Atomic<UInt64>(1)
    /// Serialises flushes (vCPU threads writing EOM, the event thread posting): one writer per slot.
    /// Taken before `vps`, never the other way round.
    private let flushing = Mutex(())

    private let vps: Mutex<[VP]>
    private let memory: GuestMemory
    private let interrupts: InterruptController
    private let logger: Logger

    init(vpCount: UInt32, memory: GuestMemory, interrupts: InterruptController, logger: Logger) {
        vps = Mutex([VP](repeating: VP(), count: Int(vpCount)))
        self.memory = memory
        self.interrupts = interrupts
        self.logger = logger
    }

    // MARK: MSRs

    func read(vp: UInt32, msr: UInt32) -> UInt64? {
        vps.withLock { vps -> UInt64? in
            guard Int(vp) < vps.count else { return nil }
            let s = vps[Int(vp)]
            switch msr {
            case HyperVInterface.MSR.scontrol: return s.scontrol
            case HyperVInterface.MSR.sversion: return 1
            case HyperVInterface.MSR.siefp: return s.siefp
            case HyperVInterface.MSR.simp: return s.simp
            case HyperVInterface.MSR.eom: return 0
            case HyperVInterface.MSR.sint0...HyperVInterface.MSR.sint15: return s.sint[Int(msr - HyperVInterface.MSR.sint0)]
            default: return nil
            }
        }
    }

    /// False when the write must fault (#GP), as on real hardware.
    func write(vp: UInt32, msr: UInt32, value: UInt64) -> Bool {
        var deliver: [Int] = []
        let accepted = vps.withLock { vps -> Bool in
            guard Int(vp) < vps.count else { return false }
            switch msr {
            case HyperVInterface.MSR.scontrol: vps[Int(vp)].scontrol = value & 1
            case HyperVInterface.MSR.siefp: vps[Int(vp)].siefp = value & ~0xFFE
            case HyperVInterface.MSR.simp: vps[Int(vp)].simp = value & ~0xFFE
            case HyperVInterface.MSR.eom: break
            case HyperVInterface.MSR.sint0...HyperVInterface.MSR.sint15:
                // vector (0-7), masked (16), auto-EOI (17, not offered), polling (18)
                vps[Int(vp)].sint[Int(msr - HyperVInterface.MSR.sint0)] = value & 0x5_00FF
            default: return false
            }
            return true
        }
        guard accepted else { return false }
        // Enabling pages or EOM can free a slot for queued messages.
        switch msr {
        case HyperVInterface.MSR.eom, HyperVInterface.MSR.simp, HyperVInterface.MSR.scontrol: deliver = Array(0..<16)
        case HyperVInterface.MSR.sint0...HyperVInterface.MSR.sint15: deliver = [Int(msr - HyperVInterface.MSR.sint0)]
        default: break
        }
        for sint in deliver { flush(vp: vp, sint: sint) }
        return true
    }

    // MARK: SynICMessageSink

    func post(vp: UInt32, sint: UInt8, messageType: UInt32, payload: [UInt8]) {
        let message = SynICMessage(messageType: messageType, payload: Array(payload.prefix(SynICMessage.maxPayloadSize)))
        if enqueue(vp: vp, sint: sint, message, stamp: nil, delivered: nil) == nil {
            logger.log(.warning, "synic", "VP \(vp) SINT \(sint): message queue full, message dropped")
        }
    }

    /// Queues `message` for the slot of `sint` and delivers what fits; returns its id for
    /// `withdraw`, or nil when the VP, SINT or queue refuses it (the caller reports that).
    func enqueue(vp: UInt32, sint: UInt8, _ message: SynICMessage,
                 stamp: (@Sendable (inout SynICMessage) -> Void)?, delivered: (@Sendable () -> Void)?) -> UInt64? {
        guard sint < 16 else { return nil }
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        let queued = vps.withLock { vps -> Bool in
            guard Int(vp) < vps.count, vps[Int(vp)].queues[Int(sint)].count < Self.maxQueuedPerSINT else { return false }
            vps[Int(vp)].queues[Int(sint)].append(Queued(id: id, message: message, stamp: stamp, delivered: delivered))
            return true
        }
        guard queued else { return nil }
        flush(vp: vp, sint: Int(sint))
        return id
    }

    /// Takes a message that is still waiting out of its queue; false when it was already delivered.
    func withdraw(vp: UInt32, sint: UInt8, id: UInt64) -> Bool {
        vps.withLock { vps -> Bool in
            guard Int(vp) < vps.count, sint < 16,
                  let at = vps[Int(vp)].queues[Int(sint)].firstIndex(where: { $0.id == id }) else { return false }
            vps[Int(vp)].queues[Int(sint)].remove(at: at)
            return true
        }
    }

    /// Fixed, edge interrupt `vector` to `vp`'s local APIC (a direct-mode synthetic timer).
    func sendVector(vp: UInt32, vector: UInt8) {
        inject(vp: vp, control: UInt64(vector))
    }

    func pendingMessageCount(vp: UInt32, sint: UInt8) -> Int {
        vps.withLock { vps in Int(vp) < vps.count && sint < 16 ? vps[Int(vp)].queues[Int(sint)].count : 0 }
    }

    /// Moves queued messages into the slot while it is free. A busy slot gets "message pending"
    /// so the guest writes EOM after freeing it; the slot is checked again after setting the flag
    /// in case the guest freed it in between (it then saw no flag and will not send EOM).
    private func flush(vp: UInt32, sint: Int) {
        flushing.withLock { _ in flushLocked(vp: vp, sint: sint) }
    }

    private func flushLocked(vp: UInt32, sint: Int) {
        while true {
            // The entry leaves the queue before its slot is written (flushes are serialised) and
            // goes back to the front if the slot turns out busy.
            let next = vps.withLock { vps -> (page: UInt64, entry: Queued, control: UInt64)? in
                guard Int(vp) < vps.count, let page = vps[Int(vp)].messagePage,
                      !vps[Int(vp)].queues[sint].isEmpty else { return nil }
                return (page, vps[Int(vp)].queues[sint].removeFirst(), vps[Int(vp)].sint[sint])
            }
            guard let next else { return }
            let slot = next.page + UInt64(sint * SynICMessage.size)
            do {
                if try memory.loadAcquire32(slot) != SynICMessage.typeNone {
                    try memory.atomicOr8(slot + UInt64(SynICMessage.flagsOffset), SynICMessage.messagePendingFlag)
                    if try memory.loadAcquire32(slot) != SynICMessage.typeNone {
                        requeue(vp: vp, sint: sint, next.entry)
                        return
                    }
                }
                var message = next.entry.message
                next.entry.stamp?(&message)
                let bytes = message.encode()
                try memory.write(slot + 4, from: bytes[4...].withUnsafeBytes { UnsafeRawBufferPointer($0) })
                try memory.storeRelease32(message.messageType, at: slot)   // the type last: it publishes the slot
            } catch {
                logger.log(.warning, "synic", "VP \(vp) SINT \(sint): message page \(hex(next.page)) is not guest RAM")
                requeue(vp: vp, sint: sint, next.entry)
                return
            }
            next.entry.delivered?()
            inject(vp: vp, control: next.control)
        }
    }

    private func requeue(vp: UInt32, sint: Int, _ entry: Queued) {
        vps.withLock { vps in vps[Int(vp)].queues[sint].insert(entry, at: 0) }
    }

    // MARK: GuestSignaller

    func signal(vp: UInt32, sint: UInt8, eventFlag: UInt32) {
        guard sint < 16, eventFlag < 2048 else { return }
        let target = vps.withLock { vps -> (page: UInt64, control: UInt64)? in
            guard Int(vp) < vps.count, let page = vps[Int(vp)].eventPage else { return nil }
            return (page, vps[Int(vp)].sint[Int(sint)])
        }
        guard let target else { return }
        let word = target.page + UInt64(sint) * 256 + UInt64(eventFlag / 32) * 4
        let bit = UInt32(1) << (eventFlag % 32)
        do {
            let old = try memory.atomicOr32(word, bit)
            if old & bit == 0 { inject(vp: vp, control: target.control) }
        } catch {
            logger.log(.warning, "synic", "VP \(vp): event flags page \(hex(target.page)) is not guest RAM")
        }
    }

    /// A fixed, edge MSI with the SINT's vector to the VP's local APIC (APIC id = VP index).
    private func inject(vp: UInt32, control: UInt64) {
        let vector = UInt32(control & 0xFF)
        guard control & (1 << 16) == 0, control & (1 << 18) == 0, vector >= 16 else { return }
        _ = interrupts.sendMSI(address: 0xFEE0_0000 | UInt64(vp) << 12, data: vector)
    }
}
