import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Diagnostics to stderr, one line per message, prefixed with its source. Guest console output
/// never goes through here.
public final class Logger: Sendable {
    public enum Level: UInt32, Sendable, Comparable {
        case error = 0, warning, info, debug
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var label: String { ["error", "warning", "info", "debug"][Int(rawValue)] }
    }

    public let threshold: Level
    private let lock = Mutex(())

    public init(threshold: Level = .warning) { self.threshold = threshold }

    public func log(_ level: Level, _ source: String, _ message: String) {
        guard level <= threshold else { return }
        let line = "veneer: \(level.label): [\(source)] \(message)\n"
        lock.withLock { _ in writeAll(2, line) }
    }
}

/// write(2) of a whole string, retrying short writes; output errors are not recoverable here.
public func writeAll(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let total = bytes.count
        let n = bytes.withUnsafeMutableBytes { $0.baseAddress.map { Glibc.write(fd, $0 + done, total - done) } ?? 0 }
        if n < 0, errno == EINTR { continue }
        guard n > 0 else { return }
        done += n
    }
}
