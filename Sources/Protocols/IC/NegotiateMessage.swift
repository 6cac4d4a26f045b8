/// The version-negotiation body (icmsgtype 0, Linux `struct icmsg_negotiate`):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 2 | `icframe_vercnt`: framework versions listed |
/// | 2 | 2 | `icmsg_vercnt`: message versions listed |
/// | 4 | 4 | reserved |
/// | 8 | 4 × n | `{u16 major; u16 minor}`: the framework versions, then the message versions |
///
/// The host lists what it offers; the guest answers in the same buffer with counts 1/1 and its
/// choices in the first two entries (0/0 when nothing matched).
public struct NegotiateMessage: Hashable, Sendable {
    /// Offset of the version list.
    public static let fixedSize = 8
    /// The most versions of one kind a list may hold (Linux `IC_VERSION_NEGOTIATION_MAX_VER_COUNT`).
    public static let maximumCount = 100

    public var frameworkVersions: [ICVersion]
    public var messageVersions: [ICVersion]
    public var reserved: UInt32

    public init(frameworkVersions: [ICVersion], messageVersions: [ICVersion], reserved: UInt32 = 0) {
        self.frameworkVersions = frameworkVersions
        self.messageVersions = messageVersions
        self.reserved = reserved
    }

    /// Bytes the body needs for these counts.
    public static func size(frameworkCount: Int, messageCount: Int) -> Int {
        fixedSize + ICVersion.wireSize * (frameworkCount + messageCount)
    }

    public var size: Int { Self.size(frameworkCount: frameworkVersions.count, messageCount: messageVersions.count) }

    /// Decodes a body; counts over 100 or a list past the body's end are errors.
    public static func decode(_ body: ArraySlice<UInt8>) throws(ICWireError) -> NegotiateMessage {
        var r = ICByteReader(body, structure: "IC negotiate body")
        let frameworkCount = Int(try r.u16())
        let messageCount = Int(try r.u16())
        let reserved = try r.u32()
        guard frameworkCount <= maximumCount else {
            throw .invalidField(structure: "IC negotiate body", field: "icframe_vercnt", value: UInt64(frameworkCount))
        }
        guard messageCount <= maximumCount else {
            throw .invalidField(structure: "IC negotiate body", field: "icmsg_vercnt", value: UInt64(messageCount))
        }
        try r.require(ICVersion.wireSize * (frameworkCount + messageCount))
        var framework: [ICVersion] = [], message: [ICVersion] = []
        for _ in 0..<frameworkCount { framework.append(try ICVersion(from: &r)) }
        for _ in 0..<messageCount { message.append(try ICVersion(from: &r)) }
        return NegotiateMessage(frameworkVersions: framework, messageVersions: message, reserved: reserved)
    }

    public func encode() -> [UInt8] {
        var w = ICByteWriter(capacity: size)
        w.u16(UInt16(clamping: frameworkVersions.count))
        w.u16(UInt16(clamping: messageVersions.count))
        w.u32(reserved)
        frameworkVersions.forEach { $0.encode(into: &w) }
        messageVersions.forEach { $0.encode(into: &w) }
        return w.bytes
    }
}
