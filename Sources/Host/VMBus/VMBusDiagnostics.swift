import Synchronization

/// Counts VMBus events by kind and logs the first 64 of each kind, then only when the count reaches
/// a power of two: everything a guest can trigger at will goes through here, so a hostile guest
/// cannot flood the host's log. (Every 1024th, as before, still let a guest that posts a million
/// bad messages a second write a thousand lines a second; a long fuzz run showed the log growing
/// with the run.) The count in each later line says how much was left out.
final class VMBusDiagnostics: Sendable {
    enum Kind: Int, CaseIterable {
        /// A guest message got no reply (nothing to answer, or no one to answer to).
        case droppedMessage
        /// A guest request got an error status.
        case refusedRequest
        /// Connects and unloads.
        case connection
        /// A channel stopped using a ring the guest corrupted.
        case ringFault
    }

    /// Traffic through the host (management metrics), counted whatever the log level.
    let traffic = VMBusTraffic()

    private let sink: any VMBusLogSink
    private let counts = Mutex([Int](repeating: 0, count: Kind.allCases.count))

    init(sink: any VMBusLogSink) { self.sink = sink }

    func report(_ kind: Kind, _ level: Logger.Level, _ message: String) {
        let count = counts.withLock { counts in
            counts[kind.rawValue] += 1
            return counts[kind.rawValue]
        }
        if count <= 64 || count & (count - 1) == 0 {
            sink.log(level, count <= 64 ? message : "\(message) (\(count) so far)")
        }
    }

    /// Debug detail (each channel message in and out): built only when the sink wants it. Not
    /// rate-limited: whoever turns debug logging on asked for every line.
    func debug(_ message: @autoclosure () -> String) {
        if sink.logsDebug { sink.log(.debug, message()) }
    }

    func count(_ kind: Kind) -> Int { counts.withLock { $0[kind.rawValue] } }
}
