import CKVM
import FoundationEssentials
import Synchronization
import WorkerControlProtocol
#if canImport(Glibc)
import Glibc
#endif

/// What serves the requests a `ControlServer` reads.
public protocol WorkerRequestHandler: Sendable {
    /// Handles one request and calls `reply` exactly once, now or later, from any thread.
    func handle(_ request: WorkerRequest, reply: @escaping @Sendable (WorkerResponse) -> Void)
    /// The event an events stream starts with: the state now.
    func currentEvent() -> WorkerEvent
}

/// The worker's control socket, served by one thread with poll(2): newline-delimited JSON
/// requests, answered in order per connection; `console` and `events` streams; the guest console's
/// output pipe drained into a ring and relayed. Nothing here blocks on a client: a client that
/// does not read its output fast enough is disconnected, so it can never stall the guest.
///
/// Threading: everything but `inbox` and `wake` is touched only by the control thread; other
/// threads hand it answers and events through `inbox` and wake it through the eventfd.
public final class ControlServer: @unchecked Sendable {
    enum Mode { case requests, console, events }

    struct Client {
        let fd: OwnedFD
        var reader = ControlLineReader(limit: WorkerControl.maxRequestBytes)
        var output: [UInt8] = []
        var mode = Mode.requests
        /// A request is being answered: later lines wait, so answers stay in order.
        var busy = false
        /// The mode the client enters once the pending request's answer is sent.
        var nextMode: Mode?
        var queuedLines: [ControlLineReader.Item] = []
        /// Close once `output` is written (after a fatal framing error).
        var closing = false
    }

    private enum Message {
        case response(client: Int, WorkerResponse)
        case event(WorkerEvent)
        case finish
    }

    /// Output a console or events client may have waiting before it is dropped as too slow.
    static let streamBacklogLimit = 1 << 20
    /// Output a request client may have waiting (large metrics included) before it is dropped.
    static let requestBacklogLimit = 16 << 20

    private let listener: OwnedFD
    private let wake: OwnedFD
    private let console: WorkerConsole?
    private let handler: any WorkerRequestHandler
    private let logger: Logger
    private let ownUID = getuid()
    private let inbox = Mutex<[Message]>([])

    private var clients: [Int: Client] = [:]
    private var nextClient = 1
    private var ring = ConsoleRing()
    private var finishing = false

    public init(listener: OwnedFD, console: WorkerConsole?, handler: any WorkerRequestHandler, logger: Logger) throws(SystemError) {
        let w = ckvm_eventfd(1)
        guard w >= 0 else { throw SystemError("eventfd") }
        wake = OwnedFD(w)
        self.listener = listener
        self.console = console
        self.handler = handler
        self.logger = logger
    }

    // MARK: from any thread

    /// Sends `event` to every events stream.
    public func publish(_ event: WorkerEvent) { post(.event(event)) }

    /// Makes `run` flush what it owes clients (bounded) and return.
    public func finish() { post(.finish) }

    private func post(_ message: Message) {
        inbox.withLock { $0.append(message) }
        var one: UInt64 = 1
        _ = Glibc.write(wake.raw, &one, 8)
    }

    // MARK: the control thread

    public func run() {
        var finishDeadline: UInt64 = .max
        while true {
            if finishing {
                drainConsole()
                let owed = clients.values.contains { !$0.output.isEmpty }
                if !owed || EventLoop.now() >= finishDeadline { break }
            }
            var fds: [pollfd] = [pollfd(fd: wake.raw, events: Int16(POLLIN), revents: 0)]
            var owners: [Int?] = [nil]
            if !finishing {
                fds.append(pollfd(fd: listener.raw, events: Int16(POLLIN), revents: 0))
                owners.append(nil)
            }
            if let console {
                fds.append(pollfd(fd: console.output.raw, events: Int16(POLLIN), revents: 0))
                owners.append(nil)
            }
            for (id, c) in clients {
                var events: Int32 = 0
                if !c.closing && !finishing { events |= Int32(POLLIN) }
                if !c.output.isEmpty { events |= Int32(POLLOUT) }
                fds.append(pollfd(fd: c.fd.raw, events: Int16(events), revents: 0))
                owners.append(id)
            }
            let n = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), finishing ? 50 : -1) }
            if n < 0 {
                if errno == EINTR { continue }
                logger.log(.error, "control", "poll failed: \(SystemError("poll")); the control socket stops serving")
                break
            }
            for (i, entry) in fds.enumerated() where entry.revents != 0 {
                if entry.fd == wake.raw {
                    var value: UInt64 = 0
                    _ = Glibc.read(wake.raw, &value, 8)
                    if processInbox() {
                        finishing = true
                        finishDeadline = EventLoop.now() &+ 1_000_000_000
                    }
                } else if entry.fd == listener.raw, owners[i] == nil {
                    acceptClients()
                } else if let console, entry.fd == console.output.raw, owners[i] == nil {
                    drainConsole()
                } else if let id = owners[i] {
                    service(id, revents: entry.revents)
                }
            }
        }
        clients.removeAll()
    }

    /// True when `finish` was asked for.
    private func processInbox() -> Bool {
        let messages = inbox.withLock { m in defer { m = [] }; return m }
        var finish = false
        for message in messages {
            switch message {
            case .response(let id, let response):
                deliver(response, to: id)
            case .event(let event):
                guard let line = Self.encodeLine(event) else { continue }
                for (id, c) in clients where c.mode == .events { send(line, to: id) }
            case .finish:
                finish = true
            }
        }
        return finish
    }

    private func acceptClients() {
        while let fd = ControlSocket.accept(listener.raw) {
            let id = nextClient
            nextClient += 1
            clients[id] = Client(fd: fd)
            guard let uid = ControlSocket.peerUID(fd.raw), uid == ownUID else {
                logger.log(.warning, "control", "refused a connection from uid \(ControlSocket.peerUID(fd.raw).map { "\($0)" } ?? "unknown") (only uid \(ownUID) may control this worker)")
                respond(WorkerResponse(id: 0, ok: false, error: WorkerError(.invalid, "permission denied: only uid \(ownUID) may control this worker")), to: id)
                clients[id]?.closing = true
                flush(id)
                continue
            }
        }
    }

    private func service(_ id: Int, revents: Int16) {
        if revents & Int16(POLLOUT) != 0 { flush(id) }
        guard clients[id] != nil else { return }
        if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 { receive(id) }
    }

    private func receive(_ id: Int) {
        guard let c = clients[id] else { return }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(c.fd.raw, $0.baseAddress, $0.count) }
        if n < 0, errno == EAGAIN || errno == EINTR { return }
        guard n > 0 else {
            clients[id] = nil   // end of stream or error: the client went away
            return
        }
        let bytes = buffer[0..<n]
        switch c.mode {
        case .console:
            guard let console else { return }
            // Keystrokes the guest has no room for are dropped, never waited for.
            _ = bytes.withUnsafeBytes { Glibc.write(console.input.raw, $0.baseAddress, $0.count) }
        case .events:
            return
        case .requests:
            guard var client = clients[id] else { return }
            client.queuedLines += client.reader.feed(bytes)
            clients[id] = client
            nextRequest(id)
        }
    }

    /// Handles the client's next queued line unless an answer is still pending.
    private func nextRequest(_ id: Int) {
        while let c = clients[id], !c.busy, c.mode == .requests, !c.closing, let item = c.queuedLines.first {
            clients[id]?.queuedLines.removeFirst()
            switch item {
            case .tooLong:
                respond(WorkerResponse(id: 0, ok: false, error: WorkerError(.invalid, "request line longer than \(WorkerControl.maxRequestBytes) bytes")), to: id)
                clients[id]?.closing = true
                clients[id]?.queuedLines = []
                flush(id)
            case .line(let bytes):
                let request: WorkerRequest
                do { request = try JSONDecoder().decode(WorkerRequest.self, from: Data(bytes)) } catch {
                    respond(WorkerResponse(id: Self.requestID(bytes), ok: false,
                                           error: WorkerError(.invalid, "malformed request: \(Self.describe(error))")), to: id)
                    continue
                }
                clients[id]?.busy = true
                clients[id]?.nextMode = switch request.op {
                case .console: console == nil ? nil : .console
                case .events: .events
                default: nil
                }
                handler.handle(request) { [weak self] response in self?.post(.response(client: id, response)) }
            }
        }
    }

    private func deliver(_ response: WorkerResponse, to id: Int) {
        guard var c = clients[id] else { return }
        c.busy = false
        let mode = response.ok ? c.nextMode : nil
        c.nextMode = nil
        clients[id] = c
        respond(response, to: id)
        switch mode {
        case .console?:
            clients[id]?.mode = .console
            clients[id]?.queuedLines = []
            send(ring.contents, to: id)
        case .events?:
            clients[id]?.mode = .events
            clients[id]?.queuedLines = []
            if let line = Self.encodeLine(handler.currentEvent()) { send(line, to: id) }
        default:
            nextRequest(id)
        }
    }

    private func respond(_ response: WorkerResponse, to id: Int) {
        guard let line = Self.encodeLine(response) else { return }
        send(line, to: id)
    }

    /// Queues bytes for a client and writes what the socket takes now; a client too far behind
    /// is dropped.
    private func send(_ bytes: [UInt8], to id: Int) {
        guard var c = clients[id] else { return }
        c.output += bytes
        let limit = c.mode == .requests ? Self.requestBacklogLimit : Self.streamBacklogLimit
        guard c.output.count <= limit else {
            logger.log(.info, "control", "dropped a \(c.mode == .console ? "console" : c.mode == .events ? "events" : "control") client that fell \(c.output.count) bytes behind")
            clients[id] = nil
            return
        }
        clients[id] = c
        flush(id)
    }

    private func flush(_ id: Int) {
        guard var c = clients[id] else { return }
        while !c.output.isEmpty {
            let n = c.output.withUnsafeBytes { Glibc.send(c.fd.raw, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { break }
                clients[id] = nil   // the peer is gone
                return
            }
            c.output.removeFirst(n)
        }
        if c.closing && c.output.isEmpty {
            clients[id] = nil
            return
        }
        clients[id] = c
    }

    private func drainConsole() {
        guard let console else { return }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(console.output.raw, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return }
            let bytes = Array(buffer[0..<n])
            ring.append(bytes)
            for (id, c) in clients where c.mode == .console { send(bytes, to: id) }
        }
    }

    // MARK: encoding

    static func encodeLine<T: Encodable>(_ value: T) -> [UInt8]? {
        guard let data = try? JSONEncoder().encode(value) else { return nil }
        return Array(data) + [0x0A]
    }

    /// The `id` of a request that did not decode as a whole, when it has a usable one.
    static func requestID(_ bytes: [UInt8]) -> UInt64 {
        struct OnlyID: Decodable { var id: UInt64 }
        return (try? JSONDecoder().decode(OnlyID.self, from: Data(bytes)))?.id ?? 0
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "missing member '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
             DecodingError.dataCorrupted(let context):
            context.codingPath.isEmpty ? "not a JSON object of a request" : "member '\(context.codingPath.map(\.stringValue).joined(separator: "."))': \(context.debugDescription)"
        default: "\(error)"
        }
    }
}
