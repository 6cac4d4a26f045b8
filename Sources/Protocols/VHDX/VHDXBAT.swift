/// A block allocation table entry ([MS-VHDX] 2.5.1): state in bits 0-2, the block's file
/// offset in MiB in bits 20-63.
public struct VHDXBATEntry: Sendable, Equatable {
    public static let size = 8

    /// Payload block states; a sector bitmap entry uses notPresent and fullyPresent ("present").
    public enum State: UInt8, Sendable {
        case notPresent = 0
        case undefined = 1
        case zero = 2
        case unmapped = 5
        case fullyPresent = 6
        case partiallyPresent = 7
    }

    public var raw: UInt64

    public init(raw: UInt64) { self.raw = raw }
    public init(state: State, fileOffset: UInt64) {
        raw = UInt64(state.rawValue) | (fileOffset / VHDXLayout.miB) << 20
    }

    /// nil for the reserved values 3 and 4.
    public var state: State? { State(rawValue: UInt8(raw & 7)) }
    public var fileOffset: UInt64 { (raw >> 20) * VHDXLayout.miB }
    /// Bits 3-19 must be zero.
    public var reservedBits: UInt64 { raw & 0xF_FFF8 }
}

/// How payload and sector bitmap entries interleave in the BAT ([MS-VHDX] 2.5): after every
/// `chunkRatio` payload entries comes the sector bitmap entry of that chunk.
public struct VHDXBATGeometry: Sendable, Equatable {
    public var virtualSize: UInt64
    public var blockSize: UInt64
    public var logicalSectorSize: UInt64
    public var hasParent: Bool

    public init(virtualSize: UInt64, blockSize: UInt32, logicalSectorSize: UInt32, hasParent: Bool) {
        self.virtualSize = virtualSize
        self.blockSize = UInt64(blockSize)
        self.logicalSectorSize = UInt64(logicalSectorSize)
        self.hasParent = hasParent
    }

    /// Payload blocks per sector bitmap block.
    public var chunkRatio: UInt64 { VHDXLayout.sectorsPerChunk * logicalSectorSize / blockSize }
    public var payloadBlocks: UInt64 { (virtualSize + blockSize - 1) / blockSize }
    public var sectorBitmapBlocks: UInt64 { (payloadBlocks + chunkRatio - 1) / chunkRatio }
    public var totalEntries: UInt64 {
        hasParent ? sectorBitmapBlocks * (chunkRatio + 1) : payloadBlocks + (payloadBlocks == 0 ? 0 : (payloadBlocks - 1) / chunkRatio)
    }
    public func payloadEntryIndex(block: UInt64) -> UInt64 { block + block / chunkRatio }
    public func sectorBitmapEntryIndex(chunk: UInt64) -> UInt64 { chunk * (chunkRatio + 1) + chunkRatio }
    /// Sectors of one payload block, and so bits of the bitmap that cover it.
    public var sectorsPerBlock: UInt64 { blockSize / logicalSectorSize }
}
