/// Peripheral device types this target presents.
public enum PeripheralDeviceType: UInt8, Sendable {
    case directAccess = 0x00
    case cdDVD = 0x05
    /// With qualifier 3: no logical unit here.
    case unknown = 0x1F
}

/// Standard INQUIRY data (36 bytes, SPC-4 6.6.2).
public struct StandardInquiryData: Sendable, Equatable {
    public static let size = 36
    /// Byte 0 for an absent LUN: qualifier 3 ("not capable of supporting a device here"), type 0x1F.
    public static let absentLUNByte: UInt8 = 0x7F

    public var deviceType: PeripheralDeviceType
    public var removable: Bool
    /// 5 = SPC-3, 6 = SPC-4.
    public var version: UInt8
    public var vendor: String
    public var product: String
    public var revision: String
    /// CMDQUE: the target queues commands.
    public var commandQueueing: Bool

    public init(deviceType: PeripheralDeviceType, removable: Bool = false, version: UInt8 = 5, vendor: String,
                product: String, revision: String, commandQueueing: Bool = true) {
        self.deviceType = deviceType
        self.removable = removable
        self.version = version
        self.vendor = vendor
        self.product = product
        self.revision = revision
        self.commandQueueing = commandQueueing
    }

    public enum Offset {
        public static let peripheral = 0, rmb = 1, version = 2, responseFormat = 3, additionalLength = 4
        public static let flags7 = 7, vendor = 8, product = 16, revision = 32
    }

    public func encode() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes[Offset.peripheral] = deviceType.rawValue
        bytes[Offset.rmb] = removable ? 0x80 : 0
        bytes[Offset.version] = version
        // Response data format 2; HISUP: LUNs are hierarchical (REPORT LUNS addressing).
        bytes[Offset.responseFormat] = 0x02 | 0x10
        bytes[Offset.additionalLength] = UInt8(Self.size - 5)
        bytes[Offset.flags7] = commandQueueing ? 0x02 : 0
        bytes.putASCII(vendor, at: Offset.vendor, width: 8)
        bytes.putASCII(product, at: Offset.product, width: 16)
        bytes.putASCII(revision, at: Offset.revision, width: 4)
        return bytes
    }

    /// What an absent LUN answers: qualifier 3, type 0x1F, otherwise a valid header so that
    /// a guest that masks INQUIRY errors (Linux does) still reads a coherent reply.
    public static func absentLUN() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        bytes[Offset.peripheral] = absentLUNByte
        bytes[Offset.version] = 5
        bytes[Offset.responseFormat] = 0x02 | 0x10
        bytes[Offset.additionalLength] = UInt8(size - 5)
        return bytes
    }
}
