/// An AML NameString (ACPI 6.5, 20.2.2): an optional root (`\`) or parent (`^`) prefix, then name
/// segments of four characters. ASL lets a segment be shorter and pads it with `_`; a segment
/// starts with A-Z or `_` and continues with A-Z, 0-9 or `_`.
///
/// Written the ASL way: `\_SB.COM1`, `^^PCI0`, `_HID`, `\` (the root itself).
public struct AMLNameString: Sendable, Equatable {
    public enum Prefix: Sendable, Equatable {
        case none
        case root
        case parent(count: Int)
    }

    public let prefix: Prefix
    /// Each exactly four ASCII bytes.
    public let segments: [[UInt8]]

    static let rootChar: UInt8 = 0x5C        // '\'
    static let parentPrefixChar: UInt8 = 0x5E // '^'
    static let dualNamePrefix: UInt8 = 0x2E
    static let multiNamePrefix: UInt8 = 0x2F
    static let nullName: UInt8 = 0x00

    public init(_ text: String) throws(AMLError) {
        var rest = Substring(text)
        if rest.hasPrefix("\\") {
            prefix = .root
            rest = rest.dropFirst()
        } else {
            let carets = rest.prefix { $0 == "^" }.count
            prefix = carets == 0 ? .none : .parent(count: carets)
            rest = rest.dropFirst(carets)
        }
        if rest.isEmpty {
            // Only the root may stand alone (NullName after the root prefix).
            guard prefix == .root else { throw .invalidName(text, reason: "no name segment") }
            segments = []
            return
        }
        var segments: [[UInt8]] = []
        for part in rest.split(separator: ".", omittingEmptySubsequences: false) {
            segments.append(try Self.segment(part, in: text))
        }
        guard segments.count <= 255 else { throw .invalidName(text, reason: "more than 255 segments") }
        self.segments = segments
    }

    private static func segment(_ part: Substring, in text: String) throws(AMLError) -> [UInt8] {
        let bytes = Array(part.utf8)
        guard (1...4).contains(bytes.count) else {
            throw .invalidName(text, reason: "segment \"\(part)\" is not 1-4 characters")
        }
        func isLead(_ b: UInt8) -> Bool { (0x41...0x5A).contains(b) || b == 0x5F }
        func isName(_ b: UInt8) -> Bool { isLead(b) || (0x30...0x39).contains(b) }
        guard isLead(bytes[0]), bytes.dropFirst().allSatisfy(isName) else {
            throw .invalidName(text, reason: "segment \"\(part)\" must be A-Z or _ then A-Z, 0-9 or _")
        }
        return bytes + Array(repeating: 0x5F, count: 4 - bytes.count)
    }

    public var encoded: [UInt8] {
        var bytes: [UInt8]
        switch prefix {
        case .none: bytes = []
        case .root: bytes = [Self.rootChar]
        case .parent(let count): bytes = Array(repeating: Self.parentPrefixChar, count: count)
        }
        switch segments.count {
        case 0: bytes.append(Self.nullName)
        case 1: bytes += segments[0]
        case 2: bytes += [Self.dualNamePrefix] + segments[0] + segments[1]
        default: bytes += [Self.multiNamePrefix, UInt8(segments.count)] + segments.flatMap { $0 }
        }
        return bytes
    }
}
