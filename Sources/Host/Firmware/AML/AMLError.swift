/// Why a piece of AML cannot be encoded; always names the offending input.
public enum AMLError: Error, CustomStringConvertible, Sendable, Equatable {
    case invalidName(String, reason: String)
    case invalidString(String)
    case invalidEISAID(String)
    case lengthTooLarge(Int)
    case tooManyElements(Int)
    case invalidArgumentCount(Int)
    case invalidResource(String)

    public var description: String {
        switch self {
        case .invalidName(let name, let reason): "AML name \"\(name)\": \(reason)"
        case .invalidString(let s): "AML string \"\(s)\" holds a character outside ASCII 0x01-0x7F"
        case .invalidEISAID(let s): "EISA id \"\(s)\" is not three letters A-Z and four hex digits"
        case .lengthTooLarge(let n): "AML package length \(n) exceeds the 28-bit PkgLength maximum"
        case .tooManyElements(let n): "AML package of \(n) elements exceeds the 255 a Package can count"
        case .invalidArgumentCount(let n): "AML method argument count \(n) is outside 0...7"
        case .invalidResource(let why): "resource descriptor: \(why)"
        }
    }
}
