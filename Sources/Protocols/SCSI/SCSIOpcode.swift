/// Operation codes this target decodes (SPC, SBC and the MMC basics of a CD/DVD drive).
public enum SCSIOpcode {
    public static let testUnitReady: UInt8 = 0x00
    public static let requestSense: UInt8 = 0x03
    public static let read6: UInt8 = 0x08
    public static let write6: UInt8 = 0x0A
    public static let inquiry: UInt8 = 0x12
    public static let modeSelect6: UInt8 = 0x15
    public static let modeSense6: UInt8 = 0x1A
    public static let startStopUnit: UInt8 = 0x1B
    public static let preventAllowMediumRemoval: UInt8 = 0x1E
    public static let readCapacity10: UInt8 = 0x25
    public static let read10: UInt8 = 0x28
    public static let write10: UInt8 = 0x2A
    public static let verify10: UInt8 = 0x2F
    public static let synchronizeCache10: UInt8 = 0x35
    public static let writeSame10: UInt8 = 0x41
    public static let unmap: UInt8 = 0x42
    public static let readTOC: UInt8 = 0x43
    public static let getConfiguration: UInt8 = 0x46
    public static let getEventStatusNotification: UInt8 = 0x4A
    public static let modeSelect10: UInt8 = 0x55
    public static let modeSense10: UInt8 = 0x5A
    public static let read16: UInt8 = 0x88
    public static let write16: UInt8 = 0x8A
    public static let verify16: UInt8 = 0x8F
    public static let synchronizeCache16: UInt8 = 0x91
    public static let writeSame16: UInt8 = 0x93
    /// SERVICE ACTION IN(16); READ CAPACITY(16) is its service action 0x10.
    public static let serviceActionIn16: UInt8 = 0x9E
    public static let readCapacity16ServiceAction: UInt8 = 0x10
    public static let reportLUNs: UInt8 = 0xA0
    public static let maintenanceIn: UInt8 = 0xA3
    public static let read12: UInt8 = 0xA8
    public static let write12: UInt8 = 0xAA

    /// The CDB length the operation code's group implies (SPC-4 4.2.5.1); nil for reserved and
    /// vendor-specific groups.
    public static func cdbLength(of opcode: UInt8) -> Int? {
        switch opcode >> 5 {
        case 0: 6
        case 1, 2: 10
        case 4: 16
        case 5: 12
        default: nil
        }
    }
}

/// SAM status codes.
public enum SCSIStatus: UInt8, Sendable {
    case good = 0x00
    case checkCondition = 0x02
    case busy = 0x08
    case reservationConflict = 0x18
    case taskSetFull = 0x28
}
