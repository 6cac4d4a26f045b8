import ICProtocol

/// What one integration component is, for the framework: its message type, the message versions
/// the host offers, and how long version negotiation may take before it is reported.
public struct ICServiceProfile: Sendable {
    /// Names the service in log lines ("heartbeat").
    public var name: String
    public var messageType: ICMessageType
    /// Offered in this order (oldest first, as Hyper-V hosts list them); the guest picks one.
    public var messageVersions: [ICVersion]
    public var frameworkVersions: [ICVersion]
    /// After this long without an answer to version negotiation the framework logs a warning and
    /// counts a timeout, then keeps waiting: the request is in the guest's ring, and a guest may
    /// legitimately read it late (Linux KVP waits for its daemon), so resending would only queue
    /// duplicates.
    public var negotiationTimeout: UInt64

    public init(name: String, messageType: ICMessageType, messageVersions: [ICVersion],
                frameworkVersions: [ICVersion] = ICFrameworkVersion.offered,
                negotiationTimeout: UInt64 = 10_000_000_000) {
        self.name = name
        self.messageType = messageType
        self.messageVersions = messageVersions
        self.frameworkVersions = frameworkVersions
        self.negotiationTimeout = negotiationTimeout
    }
}

/// Where an IC channel stands.
public enum ICPhase: Equatable, Sendable, CustomStringConvertible {
    /// The guest has not opened the channel (or closed it).
    case closed
    /// Open; the host's negotiate request is out (or waiting for ring room).
    case negotiating
    /// Versions agreed: the service runs.
    case ready(framework: ICVersion, message: ICVersion)
    /// Negotiation failed; nothing more happens until the guest reopens the channel.
    case failed(String)

    public var description: String {
        switch self {
        case .closed: "closed"
        case .negotiating: "negotiating"
        case .ready(let framework, let message): "ready (framework \(framework), message \(message))"
        case .failed(let reason): "failed: \(reason)"
        }
    }
}

/// One host request in flight.
public struct ICRequest: Equatable, Sendable {
    public var type: ICMessageType
    /// The VMBus packet's transaction id; the guest's reply carries it back.
    public var packetID: UInt64
    /// `ictransaction_id` in the IC header (the low byte of `packetID`).
    public var transactionID: UInt8
    /// The service's own note about the request (heartbeat: the sequence number sent).
    public var tag: UInt64
    /// How long the guest has to answer, in nanoseconds.
    public var timeout: UInt64

    public init(type: ICMessageType, packetID: UInt64, transactionID: UInt8, tag: UInt64, timeout: UInt64) {
        self.type = type
        self.packetID = packetID
        self.transactionID = transactionID
        self.tag = tag
        self.timeout = timeout
    }
}

/// What happened on the channel that the service must act on.
public enum ICEvent: Equatable, Sendable {
    /// Negotiation succeeded: the service may send requests now.
    case negotiated(framework: ICVersion, message: ICVersion)
    /// Negotiation failed (the reason is logged); the channel stays idle until reopened.
    case negotiationFailed(String)
    /// The guest answered the outstanding service request with a well-formed response.
    case reply(ICRequest, ICFrame)
    /// The guest answered the outstanding service request with something unusable.
    case rejected(ICRequest, String)
    /// The outstanding service request was not answered in time; a late answer is dropped.
    case timedOut(ICRequest)
    /// The guest closed the channel.
    case closed
}

/// Why `send` sent nothing.
public enum ICSendFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// Versions are not negotiated (channel closed, negotiating or failed).
    case notReady
    /// Another request is still outstanding: one transaction at a time.
    case busy
    /// The guest's ring has no room: it is not reading.
    case ringFull
    /// The host refused the write.
    case writeFailed(String)
    /// The body does not fit an IC message.
    case tooLarge(Int)

    public var description: String {
        switch self {
        case .notReady: "versions not negotiated"
        case .busy: "a request is still outstanding"
        case .ringFull: "the guest's ring is full"
        case .writeFailed(let why): "write failed: \(why)"
        case .tooLarge(let n): "a \(n)-byte body does not fit an IC message"
        }
    }
}

/// Counts of what the framework saw, for diagnostics and tests. All wrap on overflow.
public struct ICCounters: Equatable, Sendable {
    public var requestsSent: UInt64 = 0
    /// Well-formed answers to the outstanding request (negotiation included).
    public var repliesAccepted: UInt64 = 0
    /// Answers to the outstanding request that were malformed or mismatched.
    public var repliesRejected: UInt64 = 0
    /// Answers to a request that had already timed out.
    public var lateReplies: UInt64 = 0
    /// Packets that answer nothing the host sent (unknown ids, not in-band).
    public var unexpectedPackets: UInt64 = 0
    public var timeouts: UInt64 = 0
    /// Requests that could not be written (full ring, refused write).
    public var sendFailures: UInt64 = 0
    public var negotiations: UInt64 = 0

    public init() {}

    static let fieldCount = 8
    var fields: [UInt64] {
        [requestsSent, repliesAccepted, repliesRejected, lateReplies, unexpectedPackets, timeouts, sendFailures, negotiations]
    }

    init(fields f: [UInt64]) {
        requestsSent = f[0]; repliesAccepted = f[1]; repliesRejected = f[2]; lateReplies = f[3]
        unexpectedPackets = f[4]; timeouts = f[5]; sendFailures = f[6]; negotiations = f[7]
    }
}
