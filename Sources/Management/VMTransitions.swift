/// Which API operation is allowed in which state (Hyper-V's RequestStateChange rules, without
/// save/restore, which has its own issue). Anything not listed is an invalid transition: 409
/// with the current state.
enum VMOperation: String, Sendable, CaseIterable {
    case start, stop, shutdown, reset, pause, resume, delete, deviceRequest = "send a device request to", console = "attach to the console of"

    /// The states the operation may start from.
    var allowedFrom: Set<VMState> {
        switch self {
        case .start: [.off, .failed]
        case .stop: [.starting, .running, .paused]
        case .shutdown: [.running]
        case .reset: [.running, .paused]
        case .pause: [.running]
        case .resume: [.paused]
        case .delete: [.off, .failed]
        case .deviceRequest: [.running, .paused]
        case .console: [.starting, .running, .paused]
        }
    }

    func check(_ name: String, in state: VMState) throws(ManagementError) {
        guard allowedFrom.contains(state) else { throw .invalidTransition(name: name, operation: rawValue, state: state) }
    }
}
