/// The SCSI request block status (low six bits of `srb_status`): how the "port driver" (here, the
/// VSP) saw the request, separate from the SCSI status the target returned.
public enum SRBStatus: UInt8, Sendable, CaseIterable {
    case pending = 0x00
    case success = 0x01
    case aborted = 0x02
    case error = 0x04
    case busy = 0x05
    case invalidRequest = 0x06
    case noDevice = 0x08
    case timeout = 0x09
    case selectionTimeout = 0x0A
    case commandTimeout = 0x0B
    case busReset = 0x0E
    case dataOverrun = 0x12
    /// Linux then removes the LUN.
    case invalidLUN = 0x20
    case invalidTarget = 0x21
    case badFunction = 0x22
    case internalError = 0x30

    /// Bit 7: the sense area of the reply holds valid sense data.
    public static let autosenseValid: UInt8 = 0x80
    /// Bit 6: the queue is frozen (never set by this VSP).
    public static let queueFrozen: UInt8 = 0x40
    public static let mask: UInt8 = 0x3F

    /// The wire byte: status plus the autosense flag.
    public func wireValue(autosense: Bool) -> UInt8 { rawValue | (autosense ? Self.autosenseValid : 0) }
}
