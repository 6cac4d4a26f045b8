import VMBusProtocol

/// One packet read from a guest-to-host ring, already validated: the descriptor's lengths fit
/// the data the guest published, and a GPA-direct packet's ranges are well formed and inside guest
/// RAM. A VSP can use every field without further bounds checks on the ring.
public struct VMBusPacket: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case inBand
        case completion
        /// The guest's buffers for this request, as guest-physical ranges.
        case gpaDirect([GPARange])
        /// Any other type (the VSP decides whether it understands it).
        case other(UInt16)
    }

    public let descriptor: PacketDescriptor
    public let kind: Kind
    /// The bytes from the descriptor's data offset to its length (including the sender's padding
    /// to 8 bytes).
    public let payload: [UInt8]
    /// Where the packet starts in the ring, and the ring bytes it takes with its trailer:
    /// `advance(past:)` uses these, never a second read of guest memory.
    public let ringOffset: UInt32
    public let ringLength: UInt32

    public var transactionID: UInt64 { descriptor.transactionID }
    public var completionRequested: Bool { descriptor.completionRequested }
}
