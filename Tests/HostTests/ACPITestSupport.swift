import Foundation
import Testing
@testable import VeneerHost

/// "47 01 F8 03" -> [0x47, 0x01, 0xF8, 0x03]: expectations written the way a hex dump reads.
func hexBytes(_ text: String) -> [UInt8] {
    text.split(whereSeparator: \.isWhitespace).map { UInt8($0, radix: 16) ?? 0xEE }
}

func le<T: FixedWidthInteger & UnsignedInteger>(_ bytes: [UInt8], _ offset: Int, as _: T.Type = T.self) -> T {
    var value: T = 0
    for i in 0..<MemoryLayout<T>.size where offset + i < bytes.count { value |= T(bytes[offset + i]) << (8 * i) }
    return value
}

func byteSum<C: Collection<UInt8>>(_ bytes: C) -> UInt8 { bytes.reduce(0, &+) }

func ascii(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

extension Array where Element == UInt8 {
    /// Where `needle` starts inside the array, if it does.
    func firstRange(of needle: [UInt8]) -> Range<Int>? {
        guard !needle.isEmpty, needle.count <= count else { return nil }
        for start in 0...(count - needle.count) where self[start..<start + needle.count].elementsEqual(needle) {
            return start..<start + needle.count
        }
        return nil
    }
}

/// A decoder for PkgLength, written from the spec independently of the encoder, so round trips
/// check the encoder against a second reading of ACPI 6.5, 20.2.4.
func decodePackageLength(_ bytes: [UInt8]) -> (value: Int, size: Int)? {
    guard let lead = bytes.first else { return nil }
    let following = Int(lead >> 6)
    guard bytes.count > following else { return nil }
    if following == 0 { return (Int(lead & 0x3F), 1) }
    guard lead & 0x30 == 0 else { return nil }
    var value = Int(lead & 0x0F)
    for i in 0..<following { value |= Int(bytes[1 + i]) << (4 + 8 * i) }
    return (value, following + 1)
}

/// One system description table read back: header fields and the whole bytes.
struct SDT {
    let bytes: [UInt8]
    var signature: String { ascii(bytes[0..<4]) }
    var length: Int { Int(le(bytes, 4, as: UInt32.self)) }
    var revision: UInt8 { bytes[8] }
    var oemID: String { ascii(bytes[10..<16]) }
    var oemTableID: String { ascii(bytes[16..<24]) }

    /// Checks every header rule the tables share.
    func expectWellFormed(_ signature: String, revision: UInt8, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(self.signature == signature, sourceLocation: sourceLocation)
        #expect(length == bytes.count, "\(signature) length field", sourceLocation: sourceLocation)
        #expect(self.revision == revision, "\(signature) revision", sourceLocation: sourceLocation)
        #expect(byteSum(bytes) == 0, "\(signature) checksum", sourceLocation: sourceLocation)
        #expect(oemID == "VENEER", sourceLocation: sourceLocation)
        #expect(oemTableID == "VENEERVM", sourceLocation: sourceLocation)
        #expect(ascii(bytes[28..<32]) == "VNER", "creator id", sourceLocation: sourceLocation)
    }
}

extension GuestMemory {
    /// Reads a whole SDT at `address`: its header first, for the length.
    func sdt(at address: UInt64) throws -> SDT {
        let length = Int(try readValue(address + 4, as: UInt32.self))
        try #require(length >= 36 && length < 1 << 20, "implausible table length \(length) at \(address)")
        return SDT(bytes: try bytes(address, count: length))
    }
}

/// The MADT's interrupt controller structures as (type, bytes).
func madtEntries(_ madt: [UInt8]) -> [(type: UInt8, bytes: ArraySlice<UInt8>)] {
    var entries: [(UInt8, ArraySlice<UInt8>)] = []
    var offset = 44
    while offset + 2 <= madt.count {
        let length = Int(madt[offset + 1])
        guard length >= 2, offset + length <= madt.count else { break }
        entries.append((madt[offset], madt[offset..<offset + length]))
        offset += length
    }
    return entries
}
