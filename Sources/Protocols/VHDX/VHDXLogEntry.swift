/// A log entry ([MS-VHDX] 2.3): a 64-byte header and 32-byte descriptors filling whole 4 KiB
/// sectors, then one 4 KiB data sector per data descriptor. The checksum covers the whole
/// entry. Replaying an entry writes each data sector (and zeroes each zero range) in place.
public struct VHDXLogEntry: Sendable, Equatable {
    public static let signature: UInt32 = 0x6567_6F6C  // "loge"
    public static let headerSize = 64
    public static let descriptorSize = 32
    public static let checksumOffset = 4
    public static let dataDescriptorSignature: UInt32 = 0x6373_6564  // "desc"
    public static let zeroDescriptorSignature: UInt32 = 0x6F72_657A  // "zero"
    public static let dataSectorSignature: UInt32 = 0x6174_6164  // "data"
    static let sector = VHDXLayout.logSectorSize

    public enum Descriptor: Sendable, Equatable {
        /// 4 KiB of `data` for the sector at `fileOffset`.
        case data(fileOffset: UInt64, data: [UInt8])
        /// `length` bytes of zeros at `fileOffset`, both 4 KiB multiples.
        case zero(fileOffset: UInt64, length: UInt64)

        public var fileOffset: UInt64 {
            switch self { case .data(let o, _), .zero(let o, _): o }
        }
        public var length: UInt64 {
            switch self { case .data: UInt64(VHDXLayout.logSectorSize); case .zero(_, let l): l }
        }
    }

    public var sequenceNumber: UInt64
    /// Offset (in the log) of the first entry of the sequence this entry ends.
    public var tail: UInt32
    public var logGUID: VHDXGUID
    /// The file must be at least this long for the entry to be replayed.
    public var flushedFileOffset: UInt64
    /// Replaying extends the file to at least this length.
    public var lastFileOffset: UInt64
    public var descriptors: [Descriptor]

    public init(sequenceNumber: UInt64, tail: UInt32, logGUID: VHDXGUID, flushedFileOffset: UInt64, lastFileOffset: UInt64, descriptors: [Descriptor]) {
        self.sequenceNumber = sequenceNumber
        self.tail = tail
        self.logGUID = logGUID
        self.flushedFileOffset = flushedFileOffset
        self.lastFileOffset = lastFileOffset
        self.descriptors = descriptors
    }

    /// Sectors the header and descriptors take.
    public static func descriptorSectors(count: Int) -> Int { (headerSize + count * descriptorSize + sector - 1) / sector }

    public var encodedLength: Int {
        let dataCount = descriptors.filter { if case .data = $0 { true } else { false } }.count
        return (Self.descriptorSectors(count: descriptors.count) + dataCount) * Self.sector
    }

    public func encode() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: encodedLength)
        b.putU32(Self.signature, at: 0)
        b.putU32(UInt32(b.count), at: 8)
        b.putU32(tail, at: 12)
        b.putU64(sequenceNumber, at: 16)
        b.putU32(UInt32(descriptors.count), at: 24)
        b.putBytes(logGUID.bytes, at: 32)
        b.putU64(flushedFileOffset, at: 48)
        b.putU64(lastFileOffset, at: 56)
        var dataAt = Self.descriptorSectors(count: descriptors.count) * Self.sector
        for (i, d) in descriptors.enumerated() {
            let at = Self.headerSize + i * Self.descriptorSize
            switch d {
            case .zero(let offset, let length):
                b.putU32(Self.zeroDescriptorSignature, at: at)
                b.putU64(length, at: at + 8)
                b.putU64(offset, at: at + 16)
            case .data(let offset, let data):
                let sector = data.count == Self.sector ? data : Array((data + [UInt8](repeating: 0, count: Self.sector)).prefix(Self.sector))
                b.putU32(Self.dataDescriptorSignature, at: at)
                b.putU32(sector.u32(at: Self.sector - 4), at: at + 4)
                b.putU64(sector.u64(at: 0), at: at + 8)
                b.putU64(offset, at: at + 16)
                b.putU32(Self.dataSectorSignature, at: dataAt)
                b.putU32(UInt32(truncatingIfNeeded: sequenceNumber >> 32), at: dataAt + 4)
                b.putBytes(sector.slice(8, Self.sector - 12), at: dataAt + 8)
                b.putU32(UInt32(truncatingIfNeeded: sequenceNumber), at: dataAt + Self.sector - 4)
                dataAt += Self.sector
            }
            b.putU64(sequenceNumber, at: at + 24)
        }
        CRC32C.seal(&b, fieldAt: Self.checksumOffset)
        return b
    }

    /// What the first sector of a candidate entry says, before the whole entry is read.
    public struct Peek: Sendable, Equatable {
        public var entryLength: UInt32
        public var sequenceNumber: UInt64
        public var tail: UInt32
        public var descriptorCount: UInt32
        public var logGUID: VHDXGUID
    }

    /// nil unless `firstSector` starts with "loge".
    public static func peek(_ firstSector: [UInt8]) -> Peek? {
        guard firstSector.u32(at: 0) == signature else { return nil }
        return Peek(entryLength: firstSector.u32(at: 8), sequenceNumber: firstSector.u64(at: 16), tail: firstSector.u32(at: 12),
                    descriptorCount: firstSector.u32(at: 24), logGUID: VHDXGUID(bytes: firstSector.slice(32, 16)))
    }

    /// Decodes and fully validates an entry: signature, length, checksum, every descriptor's
    /// signature, alignment and sequence number, every data sector's signature and sequence.
    public static func decode(_ bytes: [UInt8]) throws(VHDXFormatError) -> VHDXLogEntry {
        let what = "log entry"
        guard bytes.count >= sector, let peek = peek(bytes) else { throw VHDXFormatError(what, "no \"loge\" signature") }
        let length = Int(peek.entryLength)
        guard length >= sector, length % sector == 0, length <= bytes.count else {
            throw VHDXFormatError(what, "entry length \(length) is not a 4 KiB multiple within the log")
        }
        let b = Array(bytes.prefix(length))
        guard b.u32(at: checksumOffset) == CRC32C.checksum(b, zeroingFieldAt: checksumOffset) else {
            throw VHDXFormatError(what, "checksum mismatch (sequence \(peek.sequenceNumber))")
        }
        guard peek.sequenceNumber != 0 else { throw VHDXFormatError(what, "sequence number 0") }
        let count = Int(peek.descriptorCount)
        let descriptorSectors = descriptorSectors(count: count)
        guard descriptorSectors * sector <= length else { throw VHDXFormatError(what, "\(count) descriptors do not fit in \(length) bytes") }
        var dataAt = descriptorSectors * sector
        var descriptors: [Descriptor] = []
        for i in 0..<count {
            let at = headerSize + i * descriptorSize
            guard b.u64(at: at + 24) == peek.sequenceNumber else { throw VHDXFormatError(what, "descriptor \(i) has another sequence number") }
            let offset = b.u64(at: at + 16)
            guard offset % UInt64(sector) == 0 else { throw VHDXFormatError(what, "descriptor \(i) file offset \(offset) is not 4 KiB aligned") }
            switch b.u32(at: at) {
            case zeroDescriptorSignature:
                let zeroLength = b.u64(at: at + 8)
                guard zeroLength % UInt64(sector) == 0 else { throw VHDXFormatError(what, "zero descriptor \(i) length \(zeroLength) is not 4 KiB aligned") }
                descriptors.append(.zero(fileOffset: offset, length: zeroLength))
            case dataDescriptorSignature:
                guard dataAt + sector <= length else { throw VHDXFormatError(what, "data descriptor \(i) has no data sector") }
                guard b.u32(at: dataAt) == dataSectorSignature,
                      UInt64(b.u32(at: dataAt + 4)) << 32 | UInt64(b.u32(at: dataAt + sector - 4)) == peek.sequenceNumber
                else { throw VHDXFormatError(what, "data sector \(i) has a bad signature or sequence number") }
                var data = [UInt8](repeating: 0, count: sector)
                data.putU64(b.u64(at: at + 8), at: 0)
                data.putBytes(b.slice(dataAt + 8, sector - 12), at: 8)
                data.putU32(b.u32(at: at + 4), at: sector - 4)
                descriptors.append(.data(fileOffset: offset, data: data))
                dataAt += sector
            default:
                throw VHDXFormatError(what, "descriptor \(i) has an unknown signature")
            }
        }
        guard dataAt == length else { throw VHDXFormatError(what, "entry length \(length) does not match its \(count) descriptors") }
        return VHDXLogEntry(sequenceNumber: peek.sequenceNumber, tail: peek.tail, logGUID: peek.logGUID,
                            flushedFileOffset: b.u64(at: 48), lastFileOffset: b.u64(at: 56), descriptors: descriptors)
    }
}
