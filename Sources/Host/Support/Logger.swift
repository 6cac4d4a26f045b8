import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Diagnostics, one line per message, prefixed with its source. Guest console output never goes
/// through here.
///
/// Backed by swift-log: each source (a device id, or a core part such as "vm" or "hyperv") logs
/// through its own `Logging.Logger` labelled `veneer.<vm>.<source>`, so a host that bootstraps
/// another swift-log backend (structured, to a collector) gets one label per VM and device. The
/// default handler, `VeneerLogHandler`, writes the one-line format `veneer: <level>: [<source>]
/// <message>` to stderr.
public final class Logger: Sendable {
    public enum Level: UInt32, Sendable, Comparable {
        case error = 0, warning, info, debug
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var label: String { ["error", "warning", "info", "debug"][Int(rawValue)] }

        var swiftLog: Logging.Logger.Level {
            switch self {
            case .error: .error
            case .warning: .warning
            case .info: .info
            case .debug: .debug
            }
        }
    }

    public typealias HandlerFactory = @Sendable (_ label: String, _ source: String) -> any LogHandler

    public let threshold: Level
    /// The VM the messages are about (the middle of each label).
    public let vm: String
    private let factory: HandlerFactory
    private let loggers = Mutex<[String: Logging.Logger]>([:])

    public init(threshold: Level = .warning, vm: String = "vm", handler: HandlerFactory? = nil) {
        self.threshold = threshold
        self.vm = vm
        factory = handler ?? { _, source in VeneerLogHandler(source: source) }
    }

    /// The same diagnostics for the VM named `name`.
    public func forVM(_ name: String) -> Logger { Logger(threshold: threshold, vm: name, handler: factory) }

    public func log(_ level: Level, _ source: String, _ message: String) {
        guard level <= threshold else { return }
        let logger = loggers.withLock { cache -> Logging.Logger in
            if let existing = cache[source] { return existing }
            let label = "veneer.\(vm).\(source)"
            var created = Logging.Logger(label: label) { [factory] label in factory(label, source) }
            created.logLevel = threshold.swiftLog
            cache[source] = created
            return created
        }
        logger.log(level: level.swiftLog, "\(message)")
    }
}

/// The default swift-log handler: `veneer: <level>: [<source>] <message>` on stderr, one write per
/// line so lines from different threads never interleave.
public struct VeneerLogHandler: LogHandler {
    public var metadata: Logging.Logger.Metadata = [:]
    public var logLevel: Logging.Logger.Level = .trace
    let source: String

    public init(source: String) { self.source = source }

    public subscript(metadataKey key: String) -> Logging.Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logging.Logger.Level, message: Logging.Logger.Message, metadata: Logging.Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        let name: String = switch level {
        case .trace, .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warning"
        case .error, .critical: "error"
        }
        writeAll(2, "veneer: \(name): [\(self.source)] \(message)\n")
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
