/// Why a VM stopped, and the status `veneer run` exits with.
public enum MachineExit: Sendable, Equatable, CustomStringConvertible {
    /// A test device (debug-exit) ended the VM with this status.
    case guestExit(Int32)
    case powerOff
    case reset
    /// A vCPU exit the VM cannot continue from (triple fault, entry failure, emulation error).
    case fault(String)
    /// A device failed fatally.
    case deviceError(String)
    /// The VMM was asked to stop by a signal.
    case interrupted(Int32)
    /// Management asked for a hard off (the worker's `stop` request).
    case stopped

    /// Guest-chosen statuses pass through; VMM-side failures use 70 and up, signals 128 + n.
    public var exitStatus: Int32 {
        switch self {
        case .guestExit(let s): s & 0xff
        case .powerOff, .reset, .stopped: 0
        case .fault: 70
        case .deviceError: 71
        case .interrupted(let signal): 128 + signal
        }
    }

    public var description: String {
        switch self {
        case .guestExit(let s): "guest exited with status \(s)"
        case .powerOff: "guest powered off"
        case .reset: "guest requested a reset; the VM stops (on_reset = stop)"
        case .fault(let report): report
        case .deviceError(let message): message
        case .interrupted(let signal): "stopped by signal \(signal)"
        case .stopped: "stopped by request"
        }
    }

    public var isFailure: Bool {
        switch self {
        case .fault, .deviceError: true
        default: false
        }
    }
}
