/// Why a ring operation failed. `corrupt` and `memory` mean the guest left the ring in a state no
/// honest driver produces (or its pages vanished): the channel stops using the ring until the guest
/// closes and reopens it. The others are the host caller's mistakes and leave the ring usable.
public enum RingError: Error, Equatable, Sendable, CustomStringConvertible {
    case corrupt(String)
    case memory(GuestMemoryError)
    /// `advance(past:)` got a packet that does not start at the current read index.
    case stalePacket
    /// A packet of this many ring bytes can never fit (rings are never filled completely).
    case packetTooLarge(Int)
    /// The host asked to write a malformed packet.
    case invalidPacket(String)

    public var isFatal: Bool {
        switch self {
        case .corrupt, .memory: true
        case .stalePacket, .packetTooLarge, .invalidPacket: false
        }
    }

    public var description: String {
        switch self {
        case .corrupt(let why): "ring corrupt: \(why)"
        case .memory(let error): "ring memory: \(error)"
        case .stalePacket: "packet does not start at the read index"
        case .packetTooLarge(let bytes): "packet of \(bytes) ring bytes cannot fit"
        case .invalidPacket(let why): "invalid packet: \(why)"
        }
    }
}
