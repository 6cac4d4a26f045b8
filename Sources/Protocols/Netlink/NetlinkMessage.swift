/// One netlink message: struct nlmsghdr (u32 length including the header, u16 type, u16 flags,
/// u32 sequence, u32 port id) and its payload (a family header, then attributes).
public struct NetlinkMessage: Sendable, Equatable {
    public var type: UInt16
    public var flags: UInt16
    public var sequence: UInt32
    public var portID: UInt32
    public var payload: [UInt8]

    public init(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32 = 0, payload: [UInt8]) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
        self.payload = payload
    }

    /// A request: `header` (ifinfomsg, ifaddrmsg, ...) then `attributes`.
    public init(type: UInt16, flags: UInt16, sequence: UInt32, header: [UInt8], attributes: [NetlinkAttribute]) {
        var payload = header
        payload.padToAlignment()
        for attribute in attributes { attribute.encode(into: &payload) }
        self.init(type: type, flags: flags, sequence: sequence, payload: payload)
    }

    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Netlink.headerSize + payload.count)
        out.appendHost(UInt32(Netlink.headerSize + payload.count))
        out.appendHost(type)
        out.appendHost(flags)
        out.appendHost(sequence)
        out.appendHost(portID)
        out.append(contentsOf: payload)
        out.padToAlignment()
        return out
    }

    /// Every message in one datagram from the kernel.
    public static func parseAll(_ datagram: ArraySlice<UInt8>) throws(NetlinkDecodeError) -> [NetlinkMessage] {
        let bytes = Array(datagram)
        var messages: [NetlinkMessage] = []
        var offset = 0
        while offset + Netlink.headerSize <= bytes.count {
            guard let length = bytes.readHost(UInt32.self, at: offset),
                  let type = bytes.readHost(UInt16.self, at: offset + 4),
                  let flags = bytes.readHost(UInt16.self, at: offset + 6),
                  let sequence = bytes.readHost(UInt32.self, at: offset + 8),
                  let portID = bytes.readHost(UInt32.self, at: offset + 12) else { break }
            let len = Int(length)
            guard len >= Netlink.headerSize, len <= bytes.count - offset else {
                throw NetlinkDecodeError("netlink message at offset \(offset) has length \(len), \(bytes.count - offset) bytes remain")
            }
            messages.append(NetlinkMessage(type: type, flags: flags, sequence: sequence, portID: portID,
                                           payload: Array(bytes[(offset + Netlink.headerSize)..<(offset + len)])))
            offset += Netlink.aligned(len)
        }
        if offset < bytes.count {
            throw NetlinkDecodeError("netlink datagram has \(bytes.count - offset) trailing bytes, shorter than a header")
        }
        return messages
    }
}

/// NLMSG_ERROR's payload: a negative errno (0 for an acknowledgement), the request's header
/// (or all of it), and with extended ack the kernel's own explanation.
public struct NetlinkErrorReply: Sendable, Equatable {
    /// Positive errno, or 0 for success.
    public var errno: Int32
    public var kernelMessage: String?

    public init(errno: Int32, kernelMessage: String? = nil) {
        self.errno = errno
        self.kernelMessage = kernelMessage
    }

    public init(_ message: NetlinkMessage) throws(NetlinkDecodeError) {
        guard let code = message.payload.readHost(Int32.self, at: 0) else {
            throw NetlinkDecodeError("NLMSG_ERROR with \(message.payload.count) payload bytes (needs 4)")
        }
        errno = code == Int32.min ? Int32.max : -code
        kernelMessage = nil
        guard message.flags & Netlink.Flags.ackTLVs != 0 else { return }
        // The echoed request: only its header when capped, else all of it.
        var tlvOffset = 4 + Netlink.headerSize
        if message.flags & Netlink.Flags.capped == 0, let echoed = message.payload.readHost(UInt32.self, at: 4) {
            tlvOffset = 4 + Netlink.aligned(Int(echoed))
        }
        guard tlvOffset <= message.payload.count else { return }
        let attributes = try NetlinkAttributes(parsing: message.payload[tlvOffset...], context: "extended ack")
        kernelMessage = attributes.string(Netlink.ErrorAttribute.message)
    }
}
