/// A config problem: the file, where in it (a key path like `device[1].port`, or a line and
/// column for syntax errors) and what is wrong.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var key: String
    public var reason: String
    /// The config file itself could not be read (missing, not a regular file, too large), as
    /// opposed to a file whose contents are wrong.
    public var unreadable: Bool

    public init(file: String, key: String, reason: String, unreadable: Bool = false) {
        self.file = file
        self.key = key
        self.reason = reason
        self.unreadable = unreadable
    }

    /// The status `veneer` exits with for this error.
    public var exitStatus: Int32 { unreadable ? SetupExitStatus.noInput : SetupExitStatus.badConfig }

    public var description: String { oneLine(key.isEmpty ? "\(file): \(reason)" : "\(file): \(key): \(reason)") }
}
