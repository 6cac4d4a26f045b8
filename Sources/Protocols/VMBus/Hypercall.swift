/// The hypercalls the VMBus guest driver issues, and the status codes it understands (TLFS;
/// Linux `include/hyperv/hvgdk_mini.h`).
public enum Hypercall {
    /// Memory form: RDX is the GPA of a `PostMessageInput`.
    public static let postMessage: UInt16 = 0x005C
    /// Fast form: RDX = connection id, flag number in bits 32-47.
    public static let signalEvent: UInt16 = 0x005D
}

/// A hypercall result as returned in RAX bits 0-15.
public struct HypercallStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let success = HypercallStatus(rawValue: 0x0000)
    public static let invalidHypercallCode = HypercallStatus(rawValue: 0x0002)
    public static let invalidHypercallInput = HypercallStatus(rawValue: 0x0003)
    public static let invalidAlignment = HypercallStatus(rawValue: 0x0004)
    public static let invalidParameter = HypercallStatus(rawValue: 0x0005)
    public static let invalidConnectionID = HypercallStatus(rawValue: 0x0012)
    /// The guest retries the post later (Linux backs off and tries again).
    public static let insufficientBuffers = HypercallStatus(rawValue: 0x0013)

    public var description: String { "HV status 0x" + String(rawValue, radix: 16) }
}

/// HvPostMessage input, 256 bytes: connection_id 0 (id in bits 0-23), reserved 4,
/// message_type 8, payload_size 12, payload 16..255.
public struct PostMessageInput: Equatable, Sendable {
    public static let size = 256
    public static let payloadOffset = 16
    public static let maxPayloadSize = 240
    /// The message type VMBus uses in both directions.
    public static let vmbusMessageType: UInt32 = 1

    public var connectionID: UInt32
    public var reserved: UInt32
    public var messageType: UInt32
    /// Exactly `payload_size` bytes.
    public var payload: [UInt8]

    public init(connectionID: UInt32, messageType: UInt32 = vmbusMessageType, payload: [UInt8]) {
        self.connectionID = connectionID
        self.reserved = 0
        self.messageType = messageType
        self.payload = payload
    }

    /// The 24-bit connection identifier; bits 24-31 are reserved.
    public var connectionIDValue: UInt32 { connectionID & 0x00FF_FFFF }

    /// Decodes the input page straight from a host mapping of guest memory (copied first, so the
    /// guest cannot change it between checks).
    public static func decode(_ buffer: UnsafeRawBufferPointer) throws(VMBusWireError) -> PostMessageInput {
        try decode(Array(buffer))
    }

    /// Decodes the input page. A payload_size above 240 is an invalid field; fewer bytes than
    /// 16 + payload_size is truncation.
    public static func decode(_ bytes: [UInt8]) throws(VMBusWireError) -> PostMessageInput {
        guard bytes.count <= size else { throw .oversized(structure: "PostMessageInput", maximum: size, actual: bytes.count) }
        var r = ByteReader(bytes, structure: "PostMessageInput")
        let connectionID = try r.u32()
        let reserved = try r.u32()
        let messageType = try r.u32()
        let payloadSize = try r.u32()
        guard payloadSize <= UInt32(maxPayloadSize) else {
            throw .invalidField(structure: "PostMessageInput", field: "payload_size", value: UInt64(payloadSize))
        }
        var input = PostMessageInput(connectionID: connectionID, messageType: messageType, payload: try r.bytes(Int(payloadSize)))
        input.reserved = reserved
        return input
    }

    /// The full 256-byte input page, payload zero-padded.
    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.u32(connectionID)
        w.u32(reserved)
        w.u32(messageType)
        w.u32(UInt32(min(payload.count, Self.maxPayloadSize)))
        w.fixed(payload, size: Self.maxPayloadSize)
        return w.bytes
    }
}
