/// Why a boot image cannot be loaded; always names the file.
public struct BootError: Error, CustomStringConvertible, Sendable, Equatable {
    public var image: String
    public var reason: String
    public var description: String { "boot image \(image): \(reason)" }
}
