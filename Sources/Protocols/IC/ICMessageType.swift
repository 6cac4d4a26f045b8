/// `icmsgtype`: what an IC message carries. Open: a guest may send any 16-bit value, so unknown
/// numbers decode too and are rejected by whoever expected something else.
public struct ICMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let negotiate = ICMessageType(rawValue: 0)
    public static let heartbeat = ICMessageType(rawValue: 1)
    public static let kvpExchange = ICMessageType(rawValue: 2)
    public static let shutdown = ICMessageType(rawValue: 3)
    public static let timeSync = ICMessageType(rawValue: 4)
    public static let vss = ICMessageType(rawValue: 5)
    public static let rdv = ICMessageType(rawValue: 6)
    public static let fileCopy = ICMessageType(rawValue: 7)
    public static let vmSession = ICMessageType(rawValue: 8)

    public var description: String {
        switch rawValue {
        case 0: "negotiate"
        case 1: "heartbeat"
        case 2: "KVP exchange"
        case 3: "shutdown"
        case 4: "time sync"
        case 5: "VSS"
        case 6: "RDV"
        case 7: "file copy"
        case 8: "VM session"
        default: "type \(rawValue)"
        }
    }
}

/// `icflags`: bit 0 transaction (an answer is expected), bit 1 request, bit 2 response. The host
/// sends TRANSACTION|REQUEST (3); Linux answers with TRANSACTION|RESPONSE (5).
public struct ICHeaderFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let transaction = ICHeaderFlags(rawValue: 0x1)
    public static let request = ICHeaderFlags(rawValue: 0x2)
    public static let response = ICHeaderFlags(rawValue: 0x4)

    public static let hostRequest: ICHeaderFlags = [.transaction, .request]
    public static let guestResponse: ICHeaderFlags = [.transaction, .response]
}

/// HRESULTs in `status` (Linux include/uapi/linux/hyperv.h).
public enum ICStatus {
    public static let ok: UInt32 = 0
    public static let fail: UInt32 = 0x8000_4005
}
