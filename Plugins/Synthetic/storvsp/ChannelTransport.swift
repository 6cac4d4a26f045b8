/// What a channel session needs from VMBus: the shape of the SDK's ABI 1.7 calls
/// (readSegmentedPacket, writePackets, mapGuest), so that the session is tested without a host.
protocol ChannelTransport: AnyObject {
    /// The next packet, nil when the ring is empty; throws when the ring is unusable until the
    /// guest reopens the channel.
    func readPacket() throws(ChannelBroken) -> IncomingPacket?
    /// Writes packets in order until one does not fit, signalling the guest at most once.
    func write(_ packets: [ReplyPacket]) -> WriteResult
    /// A host view of guest RAM (nil when the range is not all RAM).
    func mapGuest(_ gpa: UInt64, length: UInt64, writable: Bool) -> UnsafeMutableRawBufferPointer?
}

struct ChannelBroken: Error, Sendable, CustomStringConvertible {
    var description: String
}

/// A packet the guest wrote. GPA-direct packets bring their ranges as guest-RAM segments.
struct IncomingPacket: Sendable, Equatable {
    static let inBand: UInt16 = 6
    static let gpaDirect: UInt16 = 9
    static let completion: UInt16 = 11

    var type: UInt16
    var flags: UInt16
    var transactionID: UInt64
    var payload: [UInt8]
    var segments: [GuestSegmentRange]
}

struct GuestSegmentRange: Sendable, Equatable {
    var gpa: UInt64
    var length: UInt64
}

struct ReplyPacket: Sendable, Equatable {
    var type: UInt16
    var transactionID: UInt64
    var payload: [UInt8]
}

enum WriteResult: Sendable, Equatable {
    /// `written` packets went out; `full`: the rest wait for the guest to make room.
    case written(Int, full: Bool)
    case failed(String)
}
