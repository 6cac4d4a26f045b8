/// The IC message header (Linux `struct icmsg_hdr`), 20 bytes:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | `icverframe` {major, minor}: framework version (zero in a negotiate request) |
/// | 4 | 2 | `icmsgtype` |
/// | 6 | 4 | `icvermsg` {major, minor}: message version (zero in a negotiate request) |
/// | 10 | 2 | `icmsgsize`: body length |
/// | 12 | 4 | `status` (HRESULT, the guest's answer) |
/// | 16 | 1 | `ictransaction_id` |
/// | 17 | 1 | `icflags` |
/// | 18 | 2 | reserved |
public struct ICMessageHeader: Hashable, Sendable {
    public static let size = 20

    public var frameworkVersion: ICVersion
    public var messageType: ICMessageType
    public var messageVersion: ICVersion
    public var messageSize: UInt16
    public var status: UInt32
    public var transactionID: UInt8
    public var flags: ICHeaderFlags
    public var reserved: UInt16

    public init(frameworkVersion: ICVersion = .zero, messageType: ICMessageType, messageVersion: ICVersion = .zero,
                messageSize: UInt16, status: UInt32 = ICStatus.ok, transactionID: UInt8,
                flags: ICHeaderFlags = .hostRequest, reserved: UInt16 = 0) {
        self.frameworkVersion = frameworkVersion
        self.messageType = messageType
        self.messageVersion = messageVersion
        self.messageSize = messageSize
        self.status = status
        self.transactionID = transactionID
        self.flags = flags
        self.reserved = reserved
    }

    public init(from r: inout ICByteReader) throws(ICWireError) {
        try r.require(Self.size)
        frameworkVersion = try ICVersion(from: &r)
        messageType = ICMessageType(rawValue: try r.u16())
        messageVersion = try ICVersion(from: &r)
        messageSize = try r.u16()
        status = try r.u32()
        transactionID = try r.u8()
        flags = ICHeaderFlags(rawValue: try r.u8())
        reserved = try r.u16()
    }

    public func encode(into w: inout ICByteWriter) {
        frameworkVersion.encode(into: &w)
        w.u16(messageType.rawValue)
        messageVersion.encode(into: &w)
        w.u16(messageSize)
        w.u32(status)
        w.u8(transactionID)
        w.u8(flags.rawValue)
        w.u16(reserved)
    }
}
