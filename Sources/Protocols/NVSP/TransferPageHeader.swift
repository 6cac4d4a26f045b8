/// One range of a transfer-page packet: `byteCount` bytes at `byteOffset` of the receive buffer.
public struct TransferPageRange: Sendable, Equatable {
    public var byteCount: UInt32
    public var byteOffset: UInt32

    public init(byteCount: UInt32, byteOffset: UInt32) {
        self.byteCount = byteCount
        self.byteOffset = byteOffset
    }
}

/// The type-specific header of a transfer-page packet (VMBus type 7), between the packet
/// descriptor and the payload: `{u16 set id; u8 sender owns set; u8 reserved; u32 range count;
/// ranges {u32 byte count; u32 byte offset}}` — 8 + 8 × count bytes, a multiple of 8.
public enum TransferPageHeader {
    /// The most ranges one packet carries (Linux's limit without RSC).
    public static let maxRanges = 375
    public static let fixedSize = 8
    public static let rangeSize = 8

    public static func size(ranges: Int) -> Int { fixedSize + rangeSize * ranges }

    /// Writes the header into `bytes` (which must hold `size(ranges:)` bytes) and returns its size.
    @discardableResult
    public static func encode(setID: UInt16, ranges: ArraySlice<TransferPageRange>, into bytes: inout [UInt8]) -> Int {
        let size = Self.size(ranges: ranges.count)
        if bytes.count < size { bytes += [UInt8](repeating: 0, count: size - bytes.count) }
        bytes.putLE(setID, at: 0)
        bytes[2] = 0
        bytes[3] = 0
        bytes.putLE(UInt32(ranges.count), at: 4)
        var at = fixedSize
        for range in ranges {
            bytes.putLE(range.byteCount, at: at)
            bytes.putLE(range.byteOffset, at: at + 4)
            at += rangeSize
        }
        return size
    }

    /// Decodes a header (the guest side of tests): nil when short or inconsistent.
    public static func decode(_ bytes: [UInt8]) -> (setID: UInt16, ranges: [TransferPageRange])? {
        guard bytes.count >= fixedSize else { return nil }
        let count = Int(bytes.le(UInt32.self, at: 4))
        guard count <= maxRanges, bytes.count >= size(ranges: count) else { return nil }
        let ranges = (0..<count).map {
            TransferPageRange(byteCount: bytes.le(UInt32.self, at: fixedSize + $0 * rangeSize),
                              byteOffset: bytes.le(UInt32.self, at: fixedSize + $0 * rangeSize + 4))
        }
        return (bytes.le(UInt16.self, at: 0), ranges)
    }
}
