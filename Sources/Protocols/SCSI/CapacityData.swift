/// READ CAPACITY(10) data: the last LBA (0xFFFFFFFF: too large, ask READ CAPACITY(16)) and the
/// logical block length.
public struct ReadCapacity10Data: Sendable, Equatable {
    public static let size = 8
    public var lastLBA: UInt32
    public var blockLength: UInt32

    public init(blocks: UInt64, blockLength: UInt32) {
        lastLBA = blocks == 0 ? 0 : UInt32(clamping: blocks - 1)
        self.blockLength = blockLength
    }

    public func encode() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes.putBE(lastLBA, at: 0)
        bytes.putBE(blockLength, at: 4)
        return bytes
    }
}

/// READ CAPACITY(16) parameter data (32 bytes, SBC-3 5.16.2).
public struct ReadCapacity16Data: Sendable, Equatable {
    public static let size = 32
    public var lastLBA: UInt64
    public var blockLength: UInt32
    /// log2(physical / logical block size).
    public var logicalPerPhysicalExponent: UInt8
    /// LBPME: the target supports unmapping (Linux then reads VPD 0xB2 and may send UNMAP).
    public var provisioningEnabled: Bool
    /// LBPRZ: unmapped blocks read as zeros.
    public var readsZeros: Bool

    public init(blocks: UInt64, blockLength: UInt32, logicalPerPhysicalExponent: UInt8, provisioningEnabled: Bool, readsZeros: Bool) {
        lastLBA = blocks == 0 ? 0 : blocks - 1
        self.blockLength = blockLength
        self.logicalPerPhysicalExponent = logicalPerPhysicalExponent
        self.provisioningEnabled = provisioningEnabled
        self.readsZeros = readsZeros
    }

    public func encode() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes.putBE(lastLBA, at: 0)
        bytes.putBE(blockLength, at: 8)
        bytes[13] = logicalPerPhysicalExponent & 0x0F
        bytes[14] = (provisioningEnabled ? 0x80 : 0) | (readsZeros ? 0x40 : 0)
        return bytes
    }
}

/// REPORT LUNS parameter data: an 8-byte header and one 8-byte entry per LUN (peripheral-device
/// addressing for LUNs below 256, flat addressing above).
public enum ReportLUNsData {
    public static func encode(luns: [Int]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8 + 8 * luns.count)
        bytes.putBE(UInt32(8 * luns.count), at: 0)
        for (i, lun) in luns.enumerated() {
            if lun < 256 {
                bytes[8 + 8 * i + 1] = UInt8(lun)
            } else {
                bytes.putBE(UInt16(0x4000 | (lun & 0x3FFF)), at: 8 + 8 * i)
            }
        }
        return bytes
    }

    /// The LUNs listed in a REPORT LUNS answer (for tests and guests).
    public static func decode(_ bytes: [UInt8]) -> [Int] {
        let length = Int(bytes.be(UInt32.self, at: 0))
        let count = min(length, max(0, bytes.count - 8)) / 8
        return (0..<count).map { i in
            let word = Int(bytes.be(UInt16.self, at: 8 + 8 * i))
            return word & 0xC000 == 0x4000 ? word & 0x3FFF : word & 0xFF
        }
    }
}
