import ICProtocol
import VeneerPluginKit

/// The host end of one integration-component channel, shared by every IC plugin.
///
/// The plugin owns one endpoint per channel and forwards the channel's events, its timer and its
/// posted work here; the endpoint answers with `ICEvent`s for the service to act on. On open it
/// sends the version-negotiation request (framework 1.0 and 3.0, the service's message versions)
/// and checks the guest's answer; after that the service sends its requests with `send`.
///
/// Guests are hostile: one transaction is outstanding at a time, matched by the VMBus packet id
/// and the IC transaction id; a request the guest does not answer times out on the host's timer
/// (the service is told, a late answer is counted and dropped); malformed or mismatched answers
/// are counted and logged; a ring is drained at most `drainBatch` packets per callback (the rest
/// through posted work), and a full ring fails a send instead of waiting. Nothing here blocks.
public struct ICEndpoint: Sendable {
    /// Host timer and work tokens the endpoint uses; the plugin keeps them distinct from its own.
    public struct Tokens: Sendable {
        public var timeout: UInt64
        public var drain: UInt64
        public init(timeout: UInt64, drain: UInt64) {
            self.timeout = timeout
            self.drain = drain
        }
    }

    /// Packets handled per callback before the rest is left to posted work.
    public static let drainBatch = 64

    public let host: HostServices
    public let channel: UInt32
    public let profile: ICServiceProfile
    public let tokens: Tokens

    public internal(set) var phase: ICPhase = .closed
    /// The request waiting for its answer (the negotiate request while negotiating).
    public internal(set) var outstanding: ICRequest?
    public internal(set) var counters = ICCounters()
    /// The next VMBus packet id; ids below it were sent by this endpoint.
    public internal(set) var nextPacketID: UInt64 = 1
    /// Whether the negotiation timeout was already reported for the current request.
    var negotiationReported = false
    /// Between start and stop: timers may be armed.
    var running = false

    public init(host: HostServices, channel: UInt32, profile: ICServiceProfile, tokens: Tokens) {
        self.host = host
        self.channel = channel
        self.profile = profile
        self.tokens = tokens
    }

    /// Offers an IC channel: the given GUIDs with the pipe-mode properties every IC uses
    /// (call from the plugin's `make`).
    public static func offer(host: HostServices, interfaceType: String, instance: String) throws(PluginError) -> UInt32 {
        try host.offerChannel(interfaceType: interfaceType, interfaceInstance: instance,
                              userDefined: ICOffer.userDefined, channelFlags: ICOffer.channelFlags)
    }

    public var isReady: Bool { if case .ready = phase { true } else { false } }

    // MARK: lifecycle

    /// Power-on state: closed, nothing outstanding, counters cleared.
    public mutating func reset() {
        host.cancelTimer(token: tokens.timeout)
        phase = .closed
        outstanding = nil
        counters = ICCounters()
        nextPacketID = 1
        negotiationReported = false
    }

    public mutating func start() {
        running = true
        armTimeout()
    }

    public mutating func stop() {
        running = false
        host.cancelTimer(token: tokens.timeout)
    }

    // MARK: channel events

    /// The guest opened the channel: negotiation starts.
    public mutating func opened() -> [ICEvent] {
        host.cancelTimer(token: tokens.timeout)
        outstanding = nil
        phase = .negotiating
        negotiationReported = false
        log(.debug, "channel opened, negotiating")
        return sendNegotiation()
    }

    /// The guest signalled: its answers are read.
    public mutating func signalled() -> [ICEvent] { drain() }

    /// The guest closed the channel (or unloaded).
    public mutating func closed() -> [ICEvent] {
        host.cancelTimer(token: tokens.timeout)
        let wasOpen = phase != .closed
        phase = .closed
        outstanding = nil
        if wasOpen { log(.debug, "channel closed") }
        return wasOpen ? [.closed] : []
    }

    /// A host timer fired: nil when `token` is not the endpoint's.
    public mutating func timerFired(token: UInt64) -> [ICEvent]? {
        guard token == tokens.timeout else { return nil }
        guard let request = outstanding else { return [] }
        counters.timeouts &+= 1
        if request.type == .negotiate {
            // Keep waiting: see `ICServiceProfile.negotiationTimeout`.
            negotiationReported = true
            log(.warning, "the guest has not answered version negotiation within \(milliseconds(request.timeout)) ms; still waiting")
            return []
        }
        outstanding = nil
        log(.debug, "\(request.type) request \(request.packetID) timed out after \(milliseconds(request.timeout)) ms")
        return [.timedOut(request)]
    }

    /// Posted work ran: nil when `token` is not the endpoint's.
    public mutating func workPosted(token: UInt64) -> [ICEvent]? {
        guard token == tokens.drain else { return nil }
        return drain()
    }

    // MARK: requests

    /// Sends a service request with `body`; the guest has `timeout` nanoseconds to answer.
    /// `tag` comes back with the answer (or the timeout).
    public mutating func send(body: [UInt8], timeout: UInt64, tag: UInt64 = 0) -> Result<ICRequest, ICSendFailure> {
        guard case .ready(let framework, let message) = phase else { return .failure(.notReady) }
        guard outstanding == nil else { return .failure(.busy) }
        return transmit(type: profile.messageType, framework: framework, message: message, body: body, timeout: timeout, tag: tag)
    }

    private mutating func sendNegotiation() -> [ICEvent] {
        let body = ICNegotiation.offer(profile).encode()
        switch transmit(type: .negotiate, framework: .zero, message: .zero, body: body, timeout: profile.negotiationTimeout, tag: 0) {
        case .success: return []
        case .failure(.ringFull):
            log(.debug, "no ring room for the negotiate request; retrying when the guest signals")
            return []
        case .failure(let why):
            phase = .failed("cannot send the negotiate request: \(why)")
            log(.warning, "version negotiation failed: cannot send the request: \(why)")
            return [.negotiationFailed("\(why)")]
        }
    }

    private mutating func transmit(type: ICMessageType, framework: ICVersion, message: ICVersion, body: [UInt8],
                                   timeout: UInt64, tag: UInt64) -> Result<ICRequest, ICSendFailure> {
        guard ICFrame.headerSize + body.count <= ICFrame.maximumSize else { return .failure(.tooLarge(body.count)) }
        let id = nextPacketID
        let request = ICRequest(type: type, packetID: id, transactionID: UInt8(truncatingIfNeeded: id), tag: tag, timeout: timeout)
        let frame = ICFrame.request(type: type, transactionID: request.transactionID, frameworkVersion: framework,
                                    messageVersion: message, body: body)
        let bytes = frame.encode()
        switch host.writePacket(channel: channel, transactionID: id, payload: bytes) {
        case .written:
            nextPacketID &+= 1
            if nextPacketID == 0 { nextPacketID = 1 }
            counters.requestsSent &+= 1
            outstanding = request
            armTimeout()
            log(.debug, "sent \(type) request \(id) (IC transaction \(request.transactionID), \(bytes.count) bytes)")
            return .success(request)
        case .full:
            counters.sendFailures &+= 1
            return .failure(.ringFull)
        case .failed(let why):
            counters.sendFailures &+= 1
            return .failure(.writeFailed(why))
        }
    }

    func armTimeout() {
        guard running, let request = outstanding else { return }
        if request.type == .negotiate && negotiationReported { return }
        host.armTimer(token: tokens.timeout, deadline: host.now &+ request.timeout)
    }

    // MARK: answers

    private mutating func drain() -> [ICEvent] {
        guard phase != .closed else { return [] }
        var events: [ICEvent] = []
        for _ in 0..<Self.drainBatch {
            let packet: HostServices.Packet?
            do { packet = try host.readPacket(channel: channel) } catch {
                log(.warning, "channel unusable until the guest reopens it: \(error)")
                return events
            }
            guard let packet else {
                if phase == .negotiating && outstanding == nil { events += sendNegotiation() }
                return events
            }
            events += handle(packet)
        }
        host.postWork(token: tokens.drain)   // more may be waiting: continue later, let others run
        return events
    }

    private mutating func handle(_ packet: HostServices.Packet) -> [ICEvent] {
        guard packet.type == 6 else {
            counters.unexpectedPackets &+= 1
            log(.debug, "ignored a VMBus packet of type \(packet.type)")
            return []
        }
        guard let request = outstanding, packet.transactionID == request.packetID else {
            if packet.transactionID != 0 && packet.transactionID < nextPacketID {
                counters.lateReplies &+= 1
                log(.debug, "dropped a late answer to request \(packet.transactionID)")
            } else {
                counters.unexpectedPackets &+= 1
                log(.debug, "ignored a packet answering no request (id \(packet.transactionID), \(packet.payload.count) bytes)")
            }
            return []
        }
        // From here on the packet is the guest's answer to `request`: whatever it holds ends it.
        outstanding = nil
        host.cancelTimer(token: tokens.timeout)
        let frame: ICFrame
        do {
            frame = try ICFrame.decode(packet.payload)
            try Self.check(frame.header, answers: request)
        } catch {
            return reject(request, "\(error)")
        }
        counters.repliesAccepted &+= 1
        log(.debug, "\(request.type) answer to request \(request.packetID): \(packet.payload.count) bytes, status 0x\(String(frame.header.status, radix: 16))")
        guard request.type == .negotiate else { return [.reply(request, frame)] }
        switch ICNegotiation.choice(in: frame.body[...], offered: ICNegotiation.offer(profile)) {
        case .success(let (framework, message)):
            phase = .ready(framework: framework, message: message)
            counters.negotiations &+= 1
            log(.info, "negotiated framework \(framework), \(profile.name) \(message)")
            return [.negotiated(framework: framework, message: message)]
        case .failure(let why):
            phase = .failed(why.description)
            log(.warning, "version negotiation failed: \(why)")
            return [.negotiationFailed(why.description)]
        }
    }

    /// The answer's header must echo the request: same type and IC transaction id, response flag.
    private static func check(_ header: ICMessageHeader, answers request: ICRequest) throws(ICWireError) {
        guard header.messageType == request.type else {
            throw .invalidField(structure: "IC answer", field: "icmsgtype", value: UInt64(header.messageType.rawValue))
        }
        guard header.transactionID == request.transactionID else {
            throw .invalidField(structure: "IC answer", field: "ictransaction_id", value: UInt64(header.transactionID))
        }
        guard header.flags.contains(.response) else {
            throw .invalidField(structure: "IC answer", field: "icflags", value: UInt64(header.flags.rawValue))
        }
    }

    private mutating func reject(_ request: ICRequest, _ reason: String) -> [ICEvent] {
        counters.repliesRejected &+= 1
        guard request.type == .negotiate else {
            // Per message, so at debug: a misbehaving guest answers every request.
            log(.debug, "unusable answer to \(request.type) request \(request.packetID): \(reason)")
            return [.rejected(request, reason)]
        }
        log(.warning, "version negotiation failed: unusable answer to request \(request.packetID): \(reason)")
        phase = .failed(reason)
        return [.negotiationFailed(reason)]
    }

    private func log(_ level: HostServices.LogLevel, _ message: String) {
        host.log(level, "\(profile.name) IC: \(message)")
    }
}

func milliseconds(_ nanoseconds: UInt64) -> UInt64 { nanoseconds / 1_000_000 }
