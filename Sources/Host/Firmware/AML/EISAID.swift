/// The compressed EISA id ASL's `EisaId ("PNP0501")` produces (ACPI 6.5, 19.6.35): three letters
/// of five bits each (A = 1) and four hex digits, stored big-endian in a 32-bit integer that AML
/// then writes little-endian. So "PNP0501" is bytes 41 D0 05 01, the integer 0x0105D041.
public enum EISAID {
    public static func compress(_ id: String) throws(AMLError) -> UInt32 {
        let chars = Array(id.utf8)
        guard chars.count == 7 else { throw .invalidEISAID(id) }
        var letters: [UInt32] = []
        for c in chars[0..<3] {
            guard (0x41...0x5A).contains(c) else { throw .invalidEISAID(id) }
            letters.append(UInt32(c - 0x40))
        }
        var digits: UInt32 = 0
        for c in chars[3...] {
            let nibble: UInt8
            switch c {
            case 0x30...0x39: nibble = c - 0x30
            case 0x41...0x46: nibble = c - 0x41 + 10
            default: throw .invalidEISAID(id)
            }
            digits = digits << 4 | UInt32(nibble)
        }
        let bigEndian = letters[0] << 26 | letters[1] << 21 | letters[2] << 16 | digits
        return bigEndian.byteSwapped
    }
}
