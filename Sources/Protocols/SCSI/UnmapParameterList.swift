/// The UNMAP parameter list (SBC-3 5.28.2): an 8-byte header and 16-byte block descriptors.
public struct UnmapParameterList: Sendable, Equatable {
    public struct Descriptor: Sendable, Equatable {
        public var lba: UInt64
        public var blocks: UInt32
        public init(lba: UInt64, blocks: UInt32) {
            self.lba = lba
            self.blocks = blocks
        }
    }

    public static let headerSize = 8
    public static let descriptorSize = 16
    public var descriptors: [Descriptor]

    public init(descriptors: [Descriptor]) { self.descriptors = descriptors }

    public enum DecodeError: Error, Sendable, Equatable {
        /// The header's lengths disagree with each other or with the bytes sent.
        case lengthMismatch
    }

    /// Decodes `bytes` (exactly the parameter list length the CDB named). An empty list (length
    /// 0) is valid and unmaps nothing.
    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> UnmapParameterList {
        if bytes.isEmpty { return UnmapParameterList(descriptors: []) }
        guard bytes.count >= headerSize else { throw .lengthMismatch }
        let dataLength = Int(bytes.be(UInt16.self, at: 0))
        let descriptorLength = Int(bytes.be(UInt16.self, at: 2))
        // Data length counts the bytes after itself (6 + descriptor bytes at least); the
        // descriptors must be whole and inside the bytes actually sent.
        guard descriptorLength % descriptorSize == 0, headerSize + descriptorLength <= bytes.count,
              dataLength >= 6 + descriptorLength else { throw .lengthMismatch }
        let count = descriptorLength / descriptorSize
        return UnmapParameterList(descriptors: (0..<count).map { i in
            let at = headerSize + i * descriptorSize
            return Descriptor(lba: bytes.be(UInt64.self, at: at), blocks: bytes.be(UInt32.self, at: at + 8))
        })
    }

    public func encode() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.headerSize + Self.descriptorSize * descriptors.count)
        bytes.putBE(UInt16(clamping: bytes.count - 2), at: 0)
        bytes.putBE(UInt16(clamping: Self.descriptorSize * descriptors.count), at: 2)
        for (i, d) in descriptors.enumerated() {
            bytes.putBE(d.lba, at: Self.headerSize + i * Self.descriptorSize)
            bytes.putBE(d.blocks, at: Self.headerSize + i * Self.descriptorSize + 8)
        }
        return bytes
    }
}
