/// The VMBus pipe header in front of every IC message (Linux `struct vmbuspipe_hdr`), 8 bytes:
/// `flags` 0 (1 = data, as a message-mode pipe writes it), `msgsize` 4 (bytes after this header).
/// Linux ignores both and echoes the host's header in its reply.
public struct PipeHeader: Hashable, Sendable {
    public static let size = 8
    /// `flags` of a data message.
    public static let dataFlag: UInt32 = 1

    public var flags: UInt32
    public var messageSize: UInt32

    public init(flags: UInt32 = PipeHeader.dataFlag, messageSize: UInt32) {
        self.flags = flags
        self.messageSize = messageSize
    }

    public init(from r: inout ICByteReader) throws(ICWireError) {
        try r.require(Self.size)
        flags = try r.u32()
        messageSize = try r.u32()
    }

    public func encode(into w: inout ICByteWriter) {
        w.u32(flags)
        w.u32(messageSize)
    }
}
