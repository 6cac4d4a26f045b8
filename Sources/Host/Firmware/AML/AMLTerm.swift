/// A term of a definition block: the namespace objects a PC's DSDT needs.
public indirect enum AMLTerm: Sendable, Equatable {
    /// `Scope (name) { terms }`
    case scope(String, [AMLTerm])
    /// `Device (name) { terms }`
    case device(String, [AMLTerm])
    /// `Name (name, data)`
    case name(String, AMLData)
    /// `Method (name, arguments, Serialized|NotSerialized) { Return (data) }`: the only method body
    /// the tables need is a constant answer (_STA, _S5-style packages).
    case method(String, arguments: Int = 0, serialized: Bool = false, returns: AMLData)

    public func encoded() throws(AMLError) -> [UInt8] {
        switch self {
        case .scope(let name, let terms):
            return [AMLOpcode.scope] + (try AMLPackageLength.wrap(try AMLNameString(name).encoded + Self.encode(terms)))
        case .device(let name, let terms):
            return [AMLOpcode.extendedPrefix, AMLOpcode.device]
                + (try AMLPackageLength.wrap(try AMLNameString(name).encoded + Self.encode(terms)))
        case .name(let name, let data):
            return [AMLOpcode.name] + (try AMLNameString(name).encoded) + (try data.encoded())
        case .method(let name, let arguments, let serialized, let value):
            guard (0...7).contains(arguments) else { throw .invalidArgumentCount(arguments) }
            // MethodFlags: bits 2-0 argument count, bit 3 serialized, bits 7-4 SyncLevel (0).
            let flags = UInt8(arguments) | (serialized ? 0x08 : 0)
            let body = (try AMLNameString(name).encoded) + [flags, AMLOpcode.return] + (try value.encoded())
            return [AMLOpcode.method] + (try AMLPackageLength.wrap(body))
        }
    }

    public static func encode(_ terms: [AMLTerm]) throws(AMLError) -> [UInt8] {
        var bytes: [UInt8] = []
        for term in terms { bytes += try term.encoded() }
        return bytes
    }
}
