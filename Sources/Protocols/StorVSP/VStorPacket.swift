/// The storvsp packet: a 12-byte header and a 52-byte union (request block, properties, version,
/// sub-channel count). Guests send all 64 bytes; replies are cut to `12 + request size` because
/// Windows guests check the exact size.
public struct VStorPacket: Sendable, Equatable {
    public static let headerSize = 12
    public static let unionSize = 52
    /// What Linux always sends.
    public static let size = headerSize + unionSize

    /// The raw operation: guests may send numbers that are no `VStorOperation`.
    public var operation: UInt32
    public var flags: UInt32
    /// NTSTATUS: 0 success; the host's answer.
    public var status: UInt32
    /// The union, always `unionSize` bytes here (short input is zero-padded).
    public var union: [UInt8]

    /// Bit 0 of `flags`: the guest wants a completion.
    public static let completionRequestedFlag: UInt32 = 0x1

    public init(operation: VStorOperation, flags: UInt32 = 0, status: NTStatus = .success, union: [UInt8] = []) {
        self.init(rawOperation: operation.rawValue, flags: flags, status: status.rawValue, union: union)
    }

    public init(rawOperation: UInt32, flags: UInt32, status: UInt32, union: [UInt8]) {
        operation = rawOperation
        self.flags = flags
        self.status = status
        var padded = Array(union.prefix(Self.unionSize))
        if padded.count < Self.unionSize { padded += [UInt8](repeating: 0, count: Self.unionSize - padded.count) }
        self.union = padded
    }

    public var knownOperation: VStorOperation? { VStorOperation(rawValue: operation) }

    public enum DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
        case tooShort(Int)
        public var description: String {
            switch self {
            case .tooShort(let n): "storvsp packet of \(n) bytes is shorter than its 12-byte header"
            }
        }
    }

    /// Decodes a guest payload: at least the header; a shorter union reads as zeros (the caller
    /// knows how much the guest really sent and sizes its reply by that).
    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> VStorPacket {
        guard bytes.count >= headerSize else { throw .tooShort(bytes.count) }
        return VStorPacket(rawOperation: bytes.le(UInt32.self, at: 0), flags: bytes.le(UInt32.self, at: 4),
                           status: bytes.le(UInt32.self, at: 8), union: Array(bytes[headerSize...]))
    }

    /// The wire bytes, `size` long (at least the header; at most 64).
    public func encode(size: Int = VStorPacket.size) -> [UInt8] {
        let total = min(max(size, Self.headerSize), Self.size)
        var bytes = [UInt8](repeating: 0, count: total)
        bytes.putLE(operation, at: 0)
        bytes.putLE(flags, at: 4)
        bytes.putLE(status, at: 8)
        for i in 0..<(total - Self.headerSize) { bytes[Self.headerSize + i] = union[i] }
        return bytes
    }
}
