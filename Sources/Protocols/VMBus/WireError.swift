/// Why bytes could not be decoded as a VMBus wire structure. Every decoder in this module reports
/// one of these instead of reading past the input or trusting a length the sender chose.
public enum VMBusWireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than the structure (or a length field inside it) requires.
    case truncated(structure: String, needed: Int, available: Int)
    /// More bytes than the structure can ever have (e.g. a channel message over 240 bytes).
    case oversized(structure: String, maximum: Int, actual: Int)
    /// A field holds a value the format does not allow.
    case invalidField(structure: String, field: String, value: UInt64)
    /// A channel-message header names a type this implementation has no layout for.
    case unknownMessageType(UInt32)

    public var description: String {
        switch self {
        case .truncated(let s, let needed, let available):
            "\(s): needs \(needed) bytes, only \(available) present"
        case .oversized(let s, let maximum, let actual):
            "\(s): \(actual) bytes exceed the maximum of \(maximum)"
        case .invalidField(let s, let field, let value):
            "\(s): field \(field) has invalid value 0x\(String(value, radix: 16))"
        case .unknownMessageType(let type):
            "unknown channel message type \(type)"
        }
    }
}
