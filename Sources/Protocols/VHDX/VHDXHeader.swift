/// A VHDX header ([MS-VHDX] 2.2.2): 4 KiB, checksummed, two copies; the valid one with the
/// higher sequence number is current. Updates go to the other slot with sequence + 1.
public struct VHDXHeader: Sendable, Equatable {
    public static let signature: UInt32 = 0x6461_6568  // "head"
    public static let size = 4096
    public static let checksumOffset = 4

    public var sequenceNumber: UInt64
    /// Changed before the first write of any kind after an open.
    public var fileWriteGUID: VHDXGUID
    /// Changed before the first write the guest can see; a child's parent_linkage names it.
    public var dataWriteGUID: VHDXGUID
    /// Non-zero while the log may hold entries to replay.
    public var logGUID: VHDXGUID
    public var logVersion: UInt16
    public var version: UInt16
    public var logLength: UInt32
    public var logOffset: UInt64

    public init(sequenceNumber: UInt64, fileWriteGUID: VHDXGUID, dataWriteGUID: VHDXGUID, logGUID: VHDXGUID,
                logVersion: UInt16 = 0, version: UInt16 = 1, logLength: UInt32, logOffset: UInt64) {
        self.sequenceNumber = sequenceNumber
        self.fileWriteGUID = fileWriteGUID
        self.dataWriteGUID = dataWriteGUID
        self.logGUID = logGUID
        self.logVersion = logVersion
        self.version = version
        self.logLength = logLength
        self.logOffset = logOffset
    }

    /// Decodes and verifies the signature and checksum of a 4 KiB header.
    public static func decode(_ bytes: [UInt8]) throws(VHDXFormatError) -> VHDXHeader {
        guard bytes.count >= size else { throw VHDXFormatError("header", "truncated (\(bytes.count) bytes)") }
        let b = Array(bytes.prefix(size))
        guard b.u32(at: 0) == signature else { throw VHDXFormatError("header", "no \"head\" signature") }
        let stored = b.u32(at: checksumOffset)
        let computed = CRC32C.checksum(b, zeroingFieldAt: checksumOffset)
        guard stored == computed else {
            throw VHDXFormatError("header", "checksum mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16)))")
        }
        return VHDXHeader(sequenceNumber: b.u64(at: 8), fileWriteGUID: VHDXGUID(bytes: b.slice(16, 16)),
                          dataWriteGUID: VHDXGUID(bytes: b.slice(32, 16)), logGUID: VHDXGUID(bytes: b.slice(48, 16)),
                          logVersion: b.u16(at: 64), version: b.u16(at: 66), logLength: b.u32(at: 68), logOffset: b.u64(at: 72))
    }

    /// The 4 KiB header with its checksum.
    public func encode() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b.putU32(Self.signature, at: 0)
        b.putU64(sequenceNumber, at: 8)
        b.putBytes(fileWriteGUID.bytes, at: 16)
        b.putBytes(dataWriteGUID.bytes, at: 32)
        b.putBytes(logGUID.bytes, at: 48)
        b.putU16(logVersion, at: 64)
        b.putU16(version, at: 66)
        b.putU32(logLength, at: 68)
        b.putU64(logOffset, at: 72)
        CRC32C.seal(&b, fieldAt: Self.checksumOffset)
        return b
    }
}
