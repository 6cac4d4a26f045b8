#if canImport(Glibc)
import Glibc
#endif

/// A file descriptor closed when its owner goes away.
public final class OwnedFD: @unchecked Sendable {
    // @unchecked: `raw` is immutable after init; closing happens once, in deinit.
    public let raw: Int32

    public init(_ raw: Int32) { self.raw = raw }

    deinit { close(raw) }
}
