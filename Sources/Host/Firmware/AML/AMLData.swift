/// A data object: what a Name holds, a Package element, or what a Method returns.
public indirect enum AMLData: Sendable, Equatable {
    /// Encoded in the fewest bytes: Zero, One, Ones (all 64 bits: DSDT revision 2 integers are
    /// 64-bit) or the Byte/Word/DWord/QWord prefix.
    case integer(UInt64)
    case string(String)
    /// `EisaId ("PNP0501")`: always a DWord, as ASL compilers emit it.
    case eisaID(String)
    case buffer([UInt8])
    case package([AMLData])
    /// `ResourceTemplate () { ... }`: a Buffer of resource descriptors ending in an end tag.
    case resourceTemplate([ResourceDescriptor])

    public func encoded() throws(AMLError) -> [UInt8] {
        switch self {
        case .integer(let value): return Self.integerBytes(value)
        case .string(let text):
            let bytes = Array(text.utf8)
            guard bytes.allSatisfy({ (0x01...0x7F).contains($0) }) else { throw .invalidString(text) }
            return [AMLOpcode.stringPrefix] + bytes + [0]
        case .eisaID(let id):
            return [AMLOpcode.dwordPrefix] + littleEndian(try EISAID.compress(id))
        case .buffer(let bytes):
            return [AMLOpcode.buffer] + (try AMLPackageLength.wrap(Self.integerBytes(UInt64(bytes.count)) + bytes))
        case .package(let elements):
            guard elements.count <= 255 else { throw .tooManyElements(elements.count) }
            var body = [UInt8(elements.count)]
            for element in elements { body += try element.encoded() }
            return [AMLOpcode.package] + (try AMLPackageLength.wrap(body))
        case .resourceTemplate(let descriptors):
            return try AMLData.buffer(ResourceDescriptor.template(descriptors)).encoded()
        }
    }

    static func integerBytes(_ value: UInt64) -> [UInt8] {
        switch value {
        case 0: [AMLOpcode.zero]
        case 1: [AMLOpcode.one]
        case .max: [AMLOpcode.ones]
        case ...0xFF: [AMLOpcode.bytePrefix, UInt8(value)]
        case ...0xFFFF: [AMLOpcode.wordPrefix] + littleEndian(UInt16(value))
        case ...0xFFFF_FFFF: [AMLOpcode.dwordPrefix] + littleEndian(UInt32(value))
        default: [AMLOpcode.qwordPrefix] + littleEndian(value)
        }
    }
}

func littleEndian<T: FixedWidthInteger & UnsignedInteger>(_ value: T) -> [UInt8] {
    (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}
