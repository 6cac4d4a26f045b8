/// NTSTATUS values the host puts in a reply's `status` field. Linux checks only for zero during
/// initialization and ignores the field for I/O; Windows logs it.
public struct NTStatus: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let success = NTStatus(rawValue: 0)
    public static let dataOverrun = NTStatus(rawValue: 0x8000_0005)
    public static let deviceBusy = NTStatus(rawValue: 0x8000_0011)
    public static let invalidParameter = NTStatus(rawValue: 0xC000_000D)
    /// A protocol version this host does not speak.
    public static let revisionMismatch = NTStatus(rawValue: 0xC000_0059)
    public static let ioTimeout = NTStatus(rawValue: 0xC000_00B5)
    public static let deviceNotConnected = NTStatus(rawValue: 0xC000_009D)
    public static let invalidDeviceRequest = NTStatus(rawValue: 0xC000_0010)
    public static let noSuchDevice = NTStatus(rawValue: 0xC000_000E)
    /// A packet that does not fit the channel's state (e.g. I/O before initialization ended).
    public static let invalidDeviceState = NTStatus(rawValue: 0xC000_0184)
    public static let cancelled = NTStatus(rawValue: 0xC000_0120)
    public static let ioDeviceError = NTStatus(rawValue: 0xC000_0185)
    /// LUN or target absent.
    public static let deviceDoesNotExist = NTStatus(rawValue: 0xC000_00C0)

    /// The packet status that goes with an SRB status (what Windows storage drivers expect).
    public init(srb: SRBStatus) {
        switch srb {
        case .success: self = .success
        case .busy: self = .deviceBusy
        case .invalidLUN, .invalidTarget, .noDevice: self = .deviceDoesNotExist
        case .timeout, .commandTimeout, .selectionTimeout: self = .ioTimeout
        case .dataOverrun: self = .dataOverrun
        case .aborted: self = .cancelled
        case .invalidRequest, .badFunction: self = .invalidDeviceRequest
        default: self = .ioDeviceError
        }
    }

    public var description: String { "0x" + String(rawValue, radix: 16, uppercase: true) }
}
