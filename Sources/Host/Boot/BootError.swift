/// Why a boot image cannot be loaded; always names the file at fault and what it is (the kernel,
/// an initrd, a module), so a message is useful without the config at hand.
public struct BootError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file at fault.
    public var image: String
    public var reason: String
    /// What the file is for: "boot image", "initrd", "module 2".
    public var role: String
    /// The config key that named the file (`boot.kernel`, `boot.module[1].path`) when the file
    /// itself could not be read; nil for problems with its contents.
    public var key: String?
    /// The file could not be opened or read (missing, not a regular file, too large), as opposed
    /// to a file whose contents are wrong: `veneer run` exits with a different status.
    public var unreadable: Bool

    public init(image: String, reason: String, role: String = "boot image", key: String? = nil, unreadable: Bool = false) {
        self.image = image
        self.reason = reason
        self.role = role
        self.key = key
        self.unreadable = unreadable
    }

    public var description: String { "\(key.map { "\($0): " } ?? "")\(role) \(image): \(reason)" }
}
