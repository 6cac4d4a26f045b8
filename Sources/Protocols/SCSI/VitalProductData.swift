/// Vital product data page codes this target implements.
public enum VPDPage {
    public static let supportedPages: UInt8 = 0x00
    public static let unitSerialNumber: UInt8 = 0x80
    public static let deviceIdentification: UInt8 = 0x83
    public static let blockLimits: UInt8 = 0xB0
    public static let blockDeviceCharacteristics: UInt8 = 0xB1
    public static let logicalBlockProvisioning: UInt8 = 0xB2

    /// The 4-byte page header: peripheral byte, page code, page length (u16).
    static func header(peripheral: UInt8, page: UInt8, length: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 4)
        bytes[0] = peripheral
        bytes[1] = page
        bytes.putBE(UInt16(clamping: length), at: 2)
        return bytes
    }

    /// Page 0x00: the list of pages, ascending.
    public static func supportedPagesPage(peripheral: UInt8, pages: [UInt8]) -> [UInt8] {
        let sorted = Array(Set(pages + [supportedPages])).sorted()
        return header(peripheral: peripheral, page: supportedPages, length: sorted.count) + sorted
    }

    /// Page 0x80: the serial number, ASCII (printable only, at most 252 bytes).
    public static func unitSerialNumberPage(peripheral: UInt8, serial: String) -> [UInt8] {
        let ascii = Array(serial.utf8.filter { $0 >= 0x20 && $0 < 0x7F }.prefix(252))
        return header(peripheral: peripheral, page: unitSerialNumber, length: ascii.count) + ascii
    }
}

/// One designator of the device identification page (0x83).
public struct Designator: Sendable, Equatable {
    public enum CodeSet: UInt8, Sendable { case binary = 1, ascii = 2, utf8 = 3 }
    public enum Kind: UInt8, Sendable {
        case vendorSpecific = 0, t10VendorID = 1, eui64 = 2, naa = 3
    }
    public enum Association: UInt8, Sendable { case logicalUnit = 0, targetPort = 1, target = 2 }

    public var codeSet: CodeSet
    public var kind: Kind
    public var association: Association
    public var identifier: [UInt8]

    public init(codeSet: CodeSet, kind: Kind, association: Association = .logicalUnit, identifier: [UInt8]) {
        self.codeSet = codeSet
        self.kind = kind
        self.association = association
        self.identifier = Array(identifier.prefix(255))
    }

    /// A T10 vendor ID designator: 8 bytes of vendor then the vendor-specific part.
    public static func t10(vendor: String, specific: String) -> Designator {
        var vendorBytes = [UInt8](repeating: 0, count: 8)
        vendorBytes.putASCII(vendor, at: 0, width: 8)
        return Designator(codeSet: .ascii, kind: .t10VendorID,
                          identifier: vendorBytes + Array(specific.utf8.filter { $0 >= 0x20 && $0 < 0x7F }.prefix(200)))
    }

    /// An NAA 6 (IEEE registered extended) designator: 16 bytes, the high nibble of the first 6.
    public static func naaRegisteredExtended(_ sixteen: [UInt8]) -> Designator {
        var id = Array(sixteen.prefix(16)) + [UInt8](repeating: 0, count: max(0, 16 - sixteen.count))
        id[0] = 0x60 | (id[0] & 0x0F)
        return Designator(codeSet: .binary, kind: .naa, identifier: id)
    }

    public func encode() -> [UInt8] {
        [codeSet.rawValue, (association.rawValue << 4) | kind.rawValue, 0, UInt8(identifier.count)] + identifier
    }
}

extension VPDPage {
    /// Page 0x83.
    public static func deviceIdentificationPage(peripheral: UInt8, designators: [Designator]) -> [UInt8] {
        let body = designators.flatMap { $0.encode() }
        return header(peripheral: peripheral, page: deviceIdentification, length: body.count) + body
    }
}

/// Page 0xB0 (SBC-3 6.5.3), 64 bytes.
public struct BlockLimitsPage: Sendable, Equatable {
    public static let pageLength = 0x3C
    /// Blocks per transfer the target accepts at most (0: no limit).
    public var maximumTransferLength: UInt32
    public var optimalTransferLength: UInt32
    public var optimalTransferLengthGranularity: UInt16
    public var maximumUnmapLBACount: UInt32
    public var maximumUnmapBlockDescriptorCount: UInt32
    public var optimalUnmapGranularity: UInt32
    public var maximumWriteSameLength: UInt64
    /// WSNZ: a WRITE SAME with zero blocks is refused.
    public var writeSameNonZero: Bool

    public init(maximumTransferLength: UInt32, optimalTransferLength: UInt32, optimalTransferLengthGranularity: UInt16,
                maximumUnmapLBACount: UInt32, maximumUnmapBlockDescriptorCount: UInt32, optimalUnmapGranularity: UInt32,
                maximumWriteSameLength: UInt64, writeSameNonZero: Bool = true) {
        self.maximumTransferLength = maximumTransferLength
        self.optimalTransferLength = optimalTransferLength
        self.optimalTransferLengthGranularity = optimalTransferLengthGranularity
        self.maximumUnmapLBACount = maximumUnmapLBACount
        self.maximumUnmapBlockDescriptorCount = maximumUnmapBlockDescriptorCount
        self.optimalUnmapGranularity = optimalUnmapGranularity
        self.maximumWriteSameLength = maximumWriteSameLength
        self.writeSameNonZero = writeSameNonZero
    }

    public func encode(peripheral: UInt8) -> [UInt8] {
        var bytes = VPDPage.header(peripheral: peripheral, page: VPDPage.blockLimits, length: Self.pageLength)
            + [UInt8](repeating: 0, count: Self.pageLength)
        bytes[4] = writeSameNonZero ? 0x01 : 0
        bytes.putBE(optimalTransferLengthGranularity, at: 6)
        bytes.putBE(maximumTransferLength, at: 8)
        bytes.putBE(optimalTransferLength, at: 12)
        bytes.putBE(maximumUnmapLBACount, at: 20)
        bytes.putBE(maximumUnmapBlockDescriptorCount, at: 24)
        bytes.putBE(optimalUnmapGranularity, at: 28)
        bytes.putBE(maximumWriteSameLength, at: 36)
        return bytes
    }
}

/// Page 0xB1: rotation rate 1 (non-rotating medium) so guests skip seek-avoiding heuristics.
public struct BlockDeviceCharacteristicsPage: Sendable, Equatable {
    public static let pageLength = 0x3C
    public var rotationRate: UInt16
    public init(rotationRate: UInt16 = 1) { self.rotationRate = rotationRate }
    public func encode(peripheral: UInt8) -> [UInt8] {
        var bytes = VPDPage.header(peripheral: peripheral, page: VPDPage.blockDeviceCharacteristics, length: Self.pageLength)
            + [UInt8](repeating: 0, count: Self.pageLength)
        bytes.putBE(rotationRate, at: 4)
        return bytes
    }
}

/// Page 0xB2 (SBC-3 6.5.13): which unmap commands work and what unmapped blocks read as.
public struct LogicalBlockProvisioningPage: Sendable, Equatable {
    public static let pageLength = 4
    public var unmapSupported: Bool          // LBPU
    public var writeSame16UnmapSupported: Bool  // LBPWS
    public var writeSame10UnmapSupported: Bool  // LBPWS10
    /// LBPRZ: unmapped blocks read as zeros.
    public var readsZeros: Bool
    /// 2: thin provisioned; 0: fully provisioned.
    public var provisioningType: UInt8

    public init(unmapSupported: Bool, writeSame16UnmapSupported: Bool, writeSame10UnmapSupported: Bool, readsZeros: Bool, provisioningType: UInt8) {
        self.unmapSupported = unmapSupported
        self.writeSame16UnmapSupported = writeSame16UnmapSupported
        self.writeSame10UnmapSupported = writeSame10UnmapSupported
        self.readsZeros = readsZeros
        self.provisioningType = provisioningType
    }

    public func encode(peripheral: UInt8) -> [UInt8] {
        var bytes = VPDPage.header(peripheral: peripheral, page: VPDPage.logicalBlockProvisioning, length: Self.pageLength)
            + [UInt8](repeating: 0, count: Self.pageLength)
        bytes[5] = (unmapSupported ? 0x80 : 0) | (writeSame16UnmapSupported ? 0x40 : 0)
            | (writeSame10UnmapSupported ? 0x20 : 0) | (readsZeros ? 0x04 : 0)
        bytes[6] = provisioningType & 0x07
        return bytes
    }
}
