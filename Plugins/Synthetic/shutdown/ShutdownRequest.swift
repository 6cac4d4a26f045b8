import ICProtocol

/// What the host asks the guest to do, as the management side states it.
struct ShutdownRequest: Equatable, Sendable {
    enum Action: String, Sendable {
        case shutdown, restart, hibernate
    }

    var action: Action
    /// Asks the guest not to wait for applications (Linux ignores it).
    var force: Bool
    var reason: UInt32
    /// UTF-16 code units shown in the guest.
    var message: [UInt16]

    /// Nil when `message` is longer than a shutdown body holds.
    init?(action: Action, force: Bool = false, reason: UInt32 = ShutdownReason.planned, message: [UInt16] = []) {
        guard message.count <= ShutdownMessage.maximumMessageUnits else { return nil }
        self.action = action
        self.force = force
        self.reason = reason
        self.message = message
    }

    var flags: ShutdownFlags {
        var flags: ShutdownFlags = force ? .force : []
        switch action {
        case .shutdown: break
        case .restart: flags.insert(.restart)
        case .hibernate: flags.insert(.hibernate)
        }
        return flags
    }

    /// The wire body; `init?` already bounded the message, so this always fits.
    var body: [UInt8] {
        (ShutdownMessage(reasonCode: reason, flags: flags, displayMessage: message)?.encode()) ?? []
    }
}

/// How a request ended, as the guest answered it.
enum ShutdownOutcome: Equatable, Sendable, CustomStringConvertible {
    /// Status S_OK: the guest answered before acting and is now shutting down / restarting /
    /// hibernating (its channel closing next is the expected completion).
    case accepted
    /// A failure status (Linux: HV_E_FAIL for hibernation without ACPI S4, or unknown flags).
    case refused(status: UInt32)
    /// No answer in time, or an answer that does not decode.
    case unanswered(String)

    var description: String {
        switch self {
        case .accepted: "accepted"
        case .refused(let status): "refused (status 0x\(String(status, radix: 16)))"
        case .unanswered(let why): "unanswered: \(why)"
        }
    }
}

/// Why a request was not sent; the caller falls back (veneerd: the ACPI power button).
enum ShutdownRequestError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The guest has not bound the service (channel closed, negotiating, or failed).
    case notReady(String)
    /// A request is still waiting for its answer.
    case busy
    case notSent(String)

    var description: String {
        switch self {
        case .notReady(let phase): "the guest's shutdown service is not ready (\(phase))"
        case .busy: "a shutdown request is still waiting for the guest's answer"
        case .notSent(let why): "the request could not be sent: \(why)"
        }
    }
}
