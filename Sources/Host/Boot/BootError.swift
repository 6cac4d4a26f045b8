/// Why a boot image cannot be loaded; always names the file at fault and what it is (the kernel,
/// an initrd, a module), so a message is useful without the config at hand.
public struct BootError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file at fault.
    public var image: String
    public var reason: String
    /// What the file is for: "boot image", "initrd", "module 2".
    public var role: String

    public init(image: String, reason: String, role: String = "boot image") {
        self.image = image
        self.reason = reason
        self.role = role
    }

    public var description: String { "\(role) \(image): \(reason)" }
}
