import Synchronization
import VMBusProtocol

// The VMBus host: the root-partition side of the channel-management protocol.
//
// What it needs from the core (protocols in VMBusCoreInterfaces.swift):
//   - GuestMemoryAccess: RAM checks for GPADL / GPA-direct PFNs and byte copies for rings
//     (`GuestMemory` conforms already, see GuestMemory+VMBus.swift).
//   - SynICMessageSink: `post(vp:sint:messageType:payload:)` queues a message for a VP's SINT slot
//     (in order, held while the slot is busy, delivered after EOM);
//     `pendingMessageCount(vp:sint:)` lets VMBus push back on a guest that never frees its slot.
//   - GuestSignaller: `signal(vp:sint:eventFlag:)` sets the channel's bit (its relid) in the SINT row
//     of the VP's event-flags page and injects the SINT vector.
//   - VMBusLogSink: diagnostics (`Logger` conforms).
//
// Entry points the core calls:
//   - `handlePostMessage(connectionID:messageType:payload:vp:)` for HvPostMessage (0x5C), after
//     reading the 256-byte input page (`PostMessageInput.decode`); returns the HV status for RAX.
//   - `handleSignalEvent(connectionID:flagNumber:)` for HvSignalEvent (0x5D, fast: RDX bits 0-23
//     connection id, bits 32-47 flag number); returns the HV status for RAX.
//   - `register(offer:handler:)` / `unregister(_:)` when VSP devices come and go (also while the
//     guest runs: hot add and remove); `registerSubchannels(of:handlers:)` when a VSP grants the
//     guest's request for more channels of an open primary (they go when the primary closes).
//
// The guest posts channel messages to connection id 1 (`messageConnectionID`), and from protocol
// 5.0 its INITIATE_CONTACT to connection id 4; both are accepted for every message. Replies go to
// the VP the guest named in INITIATE_CONTACT, on SINT 2. A guest signals a channel on the
// connection id in its offer: relid | 2 << 12 (SINT 2, VTL 0), unique and clear of 1 and 4.
//
// Host-to-guest channel interrupts go to the VP the guest named in OPENCHANNEL (or later in
// MODIFYCHANNEL), SINT 2, event flag = relid; target VP 0xFFFFFFFF means none.
//
// Threading: every entry point may be called from any vCPU thread. Channel management is
// serialised by one lock; ring traffic uses each channel's own lock and never takes this one.
// VSP handlers' opened/closed callbacks run under the management lock (see VMBusChannelHandler):
// they must not call back into VMBusHost. The sinks are called under it too and must not either.

/// Why the host refused to register a channel.
public enum VMBusHostError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooManyChannels(limit: Int)
    case duplicateInstance(GUID)
    case userDefinedTooLong(Int)
    /// Sub-channels were asked of a channel that is not an open primary.
    case notAnOpenPrimary(UInt32)
    case tooManySubchannels(primary: UInt32, limit: Int)

    public var description: String {
        switch self {
        case .notAnOpenPrimary(let relid): "channel \(relid) is not an open primary channel"
        case .tooManySubchannels(let relid, let limit): "channel \(relid) would exceed \(limit) sub-channels"
        case .tooManyChannels(let limit): "no free relid: \(limit) channels registered"
        case .duplicateInstance(let guid): "a channel with instance \(guid) of that interface type is already registered"
        case .userDefinedTooLong(let n): "user-defined offer data of \(n) bytes exceeds 120"
        }
    }
}

public final class VMBusHost: Sendable {
    /// Where the guest posts channel messages (and, before 5.0, INITIATE_CONTACT).
    public static let messageConnectionID: UInt32 = 1
    /// Where a 5.0-or-later guest posts INITIATE_CONTACT.
    public static let initiateContactConnectionID: UInt32 = 4
    /// The SINT channel messages and channel interrupts use.
    public static let messageSINT: UInt8 = 2
    /// Versions INITIATE_CONTACT may ask for. Anything else gets version_supported = 0 and the
    /// guest tries its next older one.
    public static let supportedVersions: [VMBusVersion] = [.win10_5_3, .win10_5_2, .win10_5_1, .win10_5_0, .win10_4_1, .win10]

    let env: VMBusEnvironment
    let state = Mutex(VMBusState())

    /// `vpCount`: the partition's virtual processors; guest-named VPs must be below it.
    public init(vpCount: UInt32, memory: any GuestMemoryAccess, messages: any SynICMessageSink,
                signaller: any GuestSignaller, log: any VMBusLogSink, limits: VMBusLimits = VMBusLimits()) {
        env = VMBusEnvironment(memory: memory, messages: messages, signaller: signaller,
                               diagnostics: VMBusDiagnostics(sink: log), limits: limits, vpCount: vpCount)
    }

    /// HvPostMessage from the guest (already copied out of its input page). Returns success for
    /// every well-formed post, including channel messages the host refuses or drops: those get a
    /// protocol-level error reply, or a log line when there is no one to reply to.
    public func handlePostMessage(connectionID: UInt32, messageType: UInt32, payload: [UInt8], vp: UInt32) -> HypercallStatus {
        let id = connectionID & 0x00FF_FFFF
        guard id == Self.messageConnectionID || id == Self.initiateContactConnectionID else { return .invalidConnectionID }
        guard messageType == PostMessageInput.vmbusMessageType, payload.count <= PostMessageInput.maxPayloadSize else {
            return .invalidParameter
        }
        env.diagnostics.traffic.add(.messagesIn)
        let message: ChannelMessage
        do throws(VMBusWireError) {
            message = try ChannelMessage.decode(payload)
        } catch {
            state.withLock { $0.drop("undecodable message from VP \(vp): \(error)", env) }
            return .success
        }
        return state.withLock { $0.handle(message, env) }
    }

    /// HvSignalEvent from the guest: wakes the VSP of the open channel with that connection id.
    public func handleSignalEvent(connectionID: UInt32, flagNumber: UInt16 = 0) -> HypercallStatus {
        let id = connectionID & 0x00FF_FFFF
        let target = state.withLock { $0.openChannel(connectionID: id) }
        guard let (channel, handler) = target else { return .invalidConnectionID }
        // Channels have a dedicated interrupt: one flag, number 0.
        guard flagNumber == 0 else { return .invalidParameter }
        env.diagnostics.traffic.add(.signalsIn)
        handler.channelSignalled(channel)
        return .success
    }

    /// Adds a device. It is offered at once when the guest has already asked for offers, else
    /// with the others on REQUESTOFFERS.
    public func register(offer: ChannelOffer, handler: any VMBusChannelHandler) throws(VMBusHostError) -> VMBusChannel {
        let result: Result<VMBusChannel, VMBusHostError> = state.withLock { $0.register(offer, handler, env) }
        return try result.get()
    }

    /// Removes a device: closes it if open and rescinds the offer if the guest saw it (the relid
    /// stays reserved until the guest's RELID_RELEASED). A primary's sub-channels go first.
    public func unregister(_ channel: VMBusChannel) {
        state.withLock { $0.unregister(channel, env) }
    }

    /// Offers `handlers.count` sub-channels of the open primary `primary` (one handler each), at
    /// once if the guest asked for offers already. All or nothing. They are withdrawn when the
    /// primary closes, is unregistered, or the guest unloads or reconnects (each open one gets
    /// `channelClosed`, then every one `channelRetired`).
    public func registerSubchannels(of primary: VMBusChannel, handlers: [any VMBusChannelHandler]) throws(VMBusHostError) -> [VMBusChannel] {
        let result: Result<[VMBusChannel], VMBusHostError> = state.withLock { $0.registerSubchannels(of: primary, handlers: handlers, env) }
        return try result.get()
    }

    /// The complete GPADL `gpadl` the guest created for `channel` (or for its primary, when it is
    /// a sub-channel) as guest-RAM segments; nil when there is none.
    public func gpadlSegments(channel: VMBusChannel, gpadl: UInt32) -> [VMBusSegment]? {
        state.withLock { $0.gpadlSegments(channel, gpadl: gpadl, env) }
    }

    /// The live sub-channels of `primary`, in relid order (diagnostics, tests).
    public func subchannelRelids(of primary: VMBusChannel) -> [UInt32] {
        state.withLock { $0.subchannels(of: primary.relid) }
    }

    /// The protocol version in use, nil while the guest is not connected.
    public var negotiatedVersion: VMBusVersion? { state.withLock { $0.connection?.version } }

    /// Traffic counters (management metrics).
    public var traffic: VMBusTraffic { env.diagnostics.traffic }

    /// Guest messages dropped without a reply since the host started (diagnostics, tests).
    public var droppedMessageCount: Int { env.diagnostics.count(.droppedMessage) }

    /// Guest requests answered with an error status (diagnostics, tests).
    public var refusedRequestCount: Int { env.diagnostics.count(.refusedRequest) }

    /// GPADLs currently held (complete or being built), and the 64-bit words charged for them.
    public var gpadlUsage: (count: Int, words: Int) { state.withLock { ($0.gpadls.count, $0.gpadlBudget) } }
}

/// The core services and limits the state machine works with.
struct VMBusEnvironment: Sendable {
    let memory: any GuestMemoryAccess
    let messages: any SynICMessageSink
    let signaller: any GuestSignaller
    let diagnostics: VMBusDiagnostics
    let limits: VMBusLimits
    let vpCount: UInt32
}
