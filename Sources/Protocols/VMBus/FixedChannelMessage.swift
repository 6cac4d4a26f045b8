/// A channel message whose layout after the 8-byte header is fixed. Conformers describe the body;
/// this protocol adds the header, the type check and the length checks.
public protocol FixedChannelMessage: Equatable, Sendable {
    static var messageType: ChannelMessageType { get }
    /// Whole message size including the header, as Linux `sizeof(struct vmbus_channel_...)`.
    static var size: Int { get }
    init(body reader: inout ByteReader) throws(VMBusWireError)
    func encodeBody(into writer: inout ByteWriter)
}

extension FixedChannelMessage {
    /// Header plus body, exactly `size` bytes.
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.size)
        ChannelMessageHeader(type: Self.messageType.rawValue).encode(into: &writer)
        encodeBody(into: &writer)
        return writer.bytes
    }

    /// Decodes a whole message. Shorter than `size` is an error; bytes after `size` (fields a
    /// newer protocol version appends) are ignored, as Linux does with host messages.
    public static func decode(_ bytes: [UInt8]) throws(VMBusWireError) -> Self {
        let name = String(describing: Self.self)
        guard bytes.count <= ChannelMessageLimits.maxMessageSize else {
            throw .oversized(structure: name, maximum: ChannelMessageLimits.maxMessageSize, actual: bytes.count)
        }
        guard bytes.count >= size else { throw .truncated(structure: name, needed: size, available: bytes.count) }
        var reader = ByteReader(bytes, structure: name)
        let header = try ChannelMessageHeader(from: &reader)
        guard header.type == messageType.rawValue else {
            throw .invalidField(structure: name, field: "msgtype", value: UInt64(header.type))
        }
        return try Self(body: &reader)
    }
}
