import Synchronization
import VMBusProtocol

/// Why a channel operation failed.
public enum ChannelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The guest has not opened the channel (or closed it).
    case notOpen
    /// The guest corrupted the ring; the channel stays unusable until it is closed and reopened.
    case ringCorrupted(String)
    case stalePacket
    case packetTooLarge(Int)
    case invalidPacket(String)

    public var description: String {
        switch self {
        case .notOpen: "channel is not open"
        case .ringCorrupted(let why): "channel ring unusable: \(why)"
        case .stalePacket: "packet was already consumed"
        case .packetTooLarge(let n): "packet of \(n) ring bytes cannot fit the ring"
        case .invalidPacket(let why): "invalid packet: \(why)"
        }
    }
}

/// A VSP's handle on one VMBus channel: the offer it registered, and the ring operations once the
/// guest opened it. Safe to use from any thread; ring operations are serialised per channel.
public final class VMBusChannel: Sendable {
    public let offer: ChannelOffer
    /// The guest's name for the channel; also its bit in the SynIC event-flags row.
    public let relid: UInt32
    /// Where the guest signals this channel with HvSignalEvent.
    public let connectionID: UInt32

    private let signaller: any GuestSignaller
    private let diagnostics: VMBusDiagnostics
    private let state = Mutex<OpenState?>(nil)
    /// Set once the channel stopped being the VSP's (rescinded, or dropped with its primary or the
    /// guest's connection); its relid may then belong to another channel.
    private let retired = Atomic<Bool>(false)

    /// Everything that exists only while the guest has the channel open.
    struct OpenState: Sendable {
        var incoming: RingReader
        var outgoing: RingWriter
        /// nil: the guest asked for no host-to-guest interrupts (target VP 0xFFFFFFFF).
        var targetVP: UInt32?
        var sint: UInt8
        /// Set on the first fatal ring error; every later operation fails with it.
        var broken: String?
    }

    init(offer: ChannelOffer, relid: UInt32, connectionID: UInt32, signaller: any GuestSignaller, diagnostics: VMBusDiagnostics) {
        self.offer = offer
        self.relid = relid
        self.connectionID = connectionID
        self.signaller = signaller
        self.diagnostics = diagnostics
    }

    public var isOpen: Bool { state.withLock { $0 != nil } }

    /// True once the host withdrew the channel: the VSP must forget it (see `retired`).
    public var isRetired: Bool { retired.load(ordering: .acquiring) }

    /// The sub-channel index of the offer: 0 for a primary.
    public var isSubchannel: Bool { offer.subChannelIndex != 0 }

    // MARK: Reading the guest-to-host ring

    /// The next packet from the guest without consuming it, or nil when none is waiting.
    public func peekPacket() throws(ChannelError) -> VMBusPacket? {
        try withRings { open throws(RingError) in try open.incoming.peek() }
    }

    /// Consumes a packet `peekPacket` returned, and signals the guest if it was waiting for space.
    public func advance(past packet: VMBusPacket) throws(ChannelError) {
        let signal = try withRings { open throws(RingError) in try open.incoming.advance(past: packet) }
        diagnostics.traffic.add(.packetsIn)
        if signal { signalGuest() }
    }

    /// Reads and consumes the next packet.
    public func readPacket() throws(ChannelError) -> VMBusPacket? {
        guard let packet = try peekPacket() else { return nil }
        try advance(past: packet)
        return packet
    }

    /// Masks the guest's signals while the VSP drains the ring. After unmasking, peek again before
    /// sleeping: a packet may have arrived in between without a signal.
    public func setInterruptMask(_ masked: Bool) throws(ChannelError) {
        try withRings { open throws(RingError) in try open.incoming.setInterruptMask(masked) }
    }

    // MARK: Writing the host-to-guest ring

    /// An in-band data packet (type 6).
    public func writeInBand(_ payload: [UInt8], transactionID: UInt64, completionRequested: Bool = false) throws(ChannelError) -> RingWriteOutcome {
        try writePacket(type: PacketType.dataInBand.rawValue,
                        flags: completionRequested ? PacketDescriptor.completionRequestedFlag : 0,
                        transactionID: transactionID, payload: payload)
    }

    /// A completion packet (type 11) answering the guest's request `transactionID`.
    public func writeCompletion(_ payload: [UInt8], transactionID: UInt64) throws(ChannelError) -> RingWriteOutcome {
        try writePacket(type: PacketType.completion.rawValue, transactionID: transactionID, payload: payload)
    }

    /// Any packet. Signals the guest when the ring was empty and the guest has not masked
    /// interrupts. `.full`: retry after the next `channelSignalled`.
    public func writePacket(type: UInt16, flags: UInt16 = 0, transactionID: UInt64, header: [UInt8] = [],
                            payload: [UInt8]) throws(ChannelError) -> RingWriteOutcome {
        let outcome = try withRings { open throws(RingError) in
            try open.outgoing.write(type: type, flags: flags, transactionID: transactionID, header: header, payload: payload)
        }
        if case .written(let signal) = outcome {
            diagnostics.traffic.add(.packetsOut)
            if signal { signalGuest() }
        }
        return outcome
    }

    /// Writes `packets` in order until one does not fit, signalling the guest at most once for
    /// all of them (see `RingWriter.writeBatch`). Returns how many were written; fewer than
    /// given: retry the rest after the next `channelSignalled`. A malformed packet writes nothing
    /// (`invalidPacket` / `packetTooLarge`).
    public func writeBatch(_ packets: [OutgoingRingPacket]) throws(ChannelError) -> Int {
        guard !packets.isEmpty else { return 0 }
        let outcome = try withRings { open throws(RingError) in try open.outgoing.writeBatch(packets) }
        diagnostics.traffic.add(.packetsOut, outcome.written)
        if outcome.signalReader { signalGuest() }
        return outcome.written
    }

    /// Sets this channel's event flag for the guest and raises its SINT (unless the guest asked
    /// for no interrupts). Usually implied by writes; exposed for VSPs that batch.
    public func signalGuest() {
        let target: (UInt32, UInt8)? = state.withLock { open in
            guard let open, let vp = open.targetVP else { return nil }
            return (vp, open.sint)
        }
        if let (vp, sint) = target {
            diagnostics.traffic.add(.interruptsOut)
            signaller.signal(vp: vp, sint: sint, eventFlag: relid)
        }
    }

    // MARK: Host side

    func attach(_ open: OpenState) { state.withLock { $0 = open } }
    func retire() { retired.store(true, ordering: .releasing) }
    func detach() { state.withLock { $0 = nil } }

    func retarget(vp: UInt32) {
        state.withLock { open in
            guard open != nil else { return }
            open?.targetVP = vp
        }
    }

    /// Runs a ring operation under the channel's lock, turning ring errors into channel errors and
    /// latching fatal ones.
    private func withRings<T>(_ body: (inout OpenState) throws(RingError) -> T) throws(ChannelError) -> T {
        let result: Result<T, ChannelError> = state.withLock { slot in
            guard var open = slot else { return .failure(.notOpen) }
            if let reason = open.broken { return .failure(.ringCorrupted(reason)) }
            defer { slot = open }
            do throws(RingError) {
                return .success(try body(&open))
            } catch {
                switch error {
                case .corrupt, .memory:
                    open.broken = error.description
                    diagnostics.report(.ringFault, .warning, "channel \(relid): \(error); ring disabled until the guest reopens")
                    return .failure(.ringCorrupted(error.description))
                case .stalePacket: return .failure(.stalePacket)
                case .packetTooLarge(let n): return .failure(.packetTooLarge(n))
                case .invalidPacket(let why): return .failure(.invalidPacket(why))
                }
            }
        }
        return try result.get()
    }
}
