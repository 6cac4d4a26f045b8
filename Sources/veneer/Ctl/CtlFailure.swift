import ArgumentParser
import VeneerHost

/// Why a `veneer ctl` command failed, with the exit status scripts can switch on. Every failure is
/// printed as one line, `veneer: <detail>` (the API's problem+json detail when veneerd answered).
struct CtlFailure: Error, CustomStringConvertible {
    enum Kind {
        /// veneerd answered 404: no such VM, device or route.
        case notFound
        /// 409: a VM of that name exists, or the operation is not allowed in the VM's state.
        case conflict
        /// 400, 413, 415 or 422: the request (a name, a field, the config) was refused.
        case badRequest
        /// A local file (the config to define, the file to copy) cannot be read.
        case noInput
        /// veneerd's socket cannot be reached.
        case cannotConnect
        /// veneerd failed (5xx), answered something unexpected, or a stream broke.
        case failed
    }

    var kind: Kind
    var detail: String

    init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    var description: String { detail }

    /// Distinct statuses; 64 (usage) stays the command-line parser's.
    var exitStatus: Int32 {
        switch kind {
        case .failed: 1
        case .notFound: 3
        case .conflict: 4
        case .badRequest: SetupExitStatus.badConfig  // 65, EX_DATAERR
        case .noInput: SetupExitStatus.noInput  // 66, EX_NOINPUT
        case .cannotConnect: SetupExitStatus.hostUnavailable  // 69, EX_UNAVAILABLE
        }
    }

    /// The kind an HTTP error status maps to.
    static func kind(forStatus status: Int) -> Kind {
        switch status {
        case 404: .notFound
        case 409: .conflict
        case 400, 413, 415, 422: .badRequest
        default: .failed
        }
    }

    /// Prints the one line and turns the failure into the process's exit status.
    func report() -> ExitCode {
        writeAll(2, "veneer: \(oneLine(detail))\n")
        return ExitCode(exitStatus)
    }
}
