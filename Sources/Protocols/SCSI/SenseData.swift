/// Sense keys (SPC-4 table 48).
public enum SenseKey: UInt8, Sendable {
    case noSense = 0x0
    case recoveredError = 0x1
    case notReady = 0x2
    case mediumError = 0x3
    case hardwareError = 0x4
    case illegalRequest = 0x5
    case unitAttention = 0x6
    case dataProtect = 0x7
    case abortedCommand = 0xB
}

/// An additional sense code and qualifier, with the ones this target reports.
public struct AdditionalSense: Sendable, Hashable {
    public var code: UInt8
    public var qualifier: UInt8
    public init(_ code: UInt8, _ qualifier: UInt8) {
        self.code = code
        self.qualifier = qualifier
    }

    public static let none = AdditionalSense(0x00, 0x00)
    public static let writeError = AdditionalSense(0x0C, 0x00)
    public static let unrecoveredReadError = AdditionalSense(0x11, 0x00)
    public static let parameterListLengthError = AdditionalSense(0x1A, 0x00)
    public static let invalidCommandOperationCode = AdditionalSense(0x20, 0x00)
    public static let lbaOutOfRange = AdditionalSense(0x21, 0x00)
    public static let invalidFieldInCDB = AdditionalSense(0x24, 0x00)
    public static let logicalUnitNotSupported = AdditionalSense(0x25, 0x00)
    public static let invalidFieldInParameterList = AdditionalSense(0x26, 0x00)
    public static let writeProtected = AdditionalSense(0x27, 0x00)
    public static let spaceAllocationFailedWriteProtect = AdditionalSense(0x27, 0x07)
    public static let capacityDataChanged = AdditionalSense(0x2A, 0x09)
    public static let reportedLUNsDataChanged = AdditionalSense(0x3F, 0x0E)
    public static let savingParametersNotSupported = AdditionalSense(0x39, 0x00)
    public static let mediumNotPresent = AdditionalSense(0x3A, 0x00)
    public static let internalTargetFailure = AdditionalSense(0x44, 0x00)
}

/// Fixed-format sense data (response code 0x70, 18 bytes). storvsc and Windows read the fixed
/// format; descriptor format is never produced.
public struct SenseData: Sendable, Hashable {
    public static let size = 18
    public var key: SenseKey
    public var additional: AdditionalSense
    /// The INFORMATION field (e.g. the failing LBA), valid when non-nil.
    public var information: UInt32?

    public init(_ key: SenseKey, _ additional: AdditionalSense, information: UInt32? = nil) {
        self.key = key
        self.additional = additional
        self.information = information
    }

    public func encode() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes[0] = 0x70 | (information != nil ? 0x80 : 0)
        bytes[2] = key.rawValue
        if let information { bytes.putBE(information, at: 3) }
        bytes[7] = UInt8(Self.size - 8)
        bytes[12] = additional.code
        bytes[13] = additional.qualifier
        return bytes
    }

    /// Decodes fixed-format sense (for tests and logs); nil for other formats or short data.
    public static func decode(_ bytes: [UInt8]) -> SenseData? {
        guard bytes.count >= 14, bytes[0] & 0x7F == 0x70 || bytes[0] & 0x7F == 0x71,
              let key = SenseKey(rawValue: bytes[2] & 0x0F) else { return nil }
        return SenseData(key, AdditionalSense(bytes[12], bytes[13]),
                         information: bytes[0] & 0x80 != 0 ? bytes.be(UInt32.self, at: 3) : nil)
    }
}
