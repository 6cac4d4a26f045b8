/// Why bytes could not be decoded as an integration-component message. Every decoder in this
/// module reports one of these instead of reading past its input or trusting a guest's length.
public enum ICWireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than the structure (or a count inside it) requires.
    case truncated(structure: String, needed: Int, available: Int)
    /// A field holds a value the format does not allow.
    case invalidField(structure: String, field: String, value: UInt64)

    public var description: String {
        switch self {
        case .truncated(let s, let needed, let available):
            "\(s): needs \(needed) bytes, only \(available) present"
        case .invalidField(let s, let field, let value):
            "\(s): field \(field) has invalid value \(value) (0x\(String(value, radix: 16)))"
        }
    }
}
