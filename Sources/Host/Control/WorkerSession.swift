import FoundationEssentials
import Synchronization
import WorkerControlProtocol
#if canImport(Glibc)
import Glibc
#endif

/// One worker's VM as management sees it: its state (Starting, Running, Paused, Stopping), the
/// machine currently running, and the answers to every `WorkerRequest.Op`. The worker's main
/// thread moves it through machine lifetimes (`attach`, `started`, `detach`); the control thread
/// calls `handle`.
public final class WorkerSession: WorkerRequestHandler, Sendable {
    private struct State {
        var state: WorkerState = .starting
        var machine: Machine?
        /// Accumulated Running time of earlier stretches, ns.
        var runningNs: UInt64 = 0
        /// When the current Running stretch began (monotonic ns), nil while not running.
        var runningSince: UInt64?
        var resets = 0
        /// A `reset` request is under way: the next machine exit `.reset` restarts the VM.
        var resetRequested = false
    }

    public let config: VMConfig
    private let logger: Logger
    private let startedAtMs = WorkerSession.realtimeMs()
    private let state = Mutex(State())
    /// Where state changes go (the control server's events streams); set once, before serving.
    private let sink = Mutex<(@Sendable (WorkerEvent) -> Void)?>(nil)

    public init(config: VMConfig, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    public func onEvent(_ publish: @escaping @Sendable (WorkerEvent) -> Void) { sink.withLock { $0 = publish } }

    static func realtimeMs() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Int64(t.tv_sec) * 1000 + Int64(t.tv_nsec) / 1_000_000
    }

    // MARK: lifecycle (the worker's main thread)

    /// A new machine was built; it is Starting until its vCPUs run.
    public func attach(_ machine: Machine) { state.withLock { $0.machine = machine } }

    /// The machine's vCPUs are running.
    public func started(reason: String) { transition(to: .running, reason: reason) }

    /// The machine's run ended; returns whether a `reset` request asked for this exit.
    public func detach() -> Bool {
        state.withLock { s in
            s.machine = nil
            if let since = s.runningSince { s.runningNs += EventLoop.now() &- since }
            s.runningSince = nil
            defer { s.resetRequested = false }
            return s.resetRequested
        }
    }

    /// The VM restarts in this worker.
    public func restarting(reason: String) {
        state.withLock { $0.resets += 1 }
        transition(to: .starting, reason: reason)
    }

    public func stopping(reason: String) { transition(to: .stopping, reason: reason) }

    private func transition(to new: WorkerState, reason: String) {
        let changed = state.withLock { s -> Bool in
            guard s.state != new else { return false }
            // Stopping is final: nothing after it but the exit.
            guard s.state != .stopping else { return false }
            let now = EventLoop.now()
            if new == .running, s.runningSince == nil { s.runningSince = now }
            if new != .running, let since = s.runningSince {
                s.runningNs += now &- since
                s.runningSince = nil
            }
            s.state = new
            return true
        }
        guard changed else { return }
        logger.log(.info, "vm", "\(new.rawValue): \(reason)")
        let event = WorkerEvent(timeMs: Self.realtimeMs(), state: new, reason: reason)
        sink.withLock { $0 }?(event)
    }

    public var currentState: WorkerState { state.withLock { $0.state } }

    public func currentEvent() -> WorkerEvent {
        WorkerEvent(timeMs: Self.realtimeMs(), state: currentState, reason: "current state")
    }

    // MARK: requests (the control thread)

    public func info() -> WorkerInfo {
        let (s, machine, runningNs) = state.withLock { s in
            (s, s.machine, s.runningNs + (s.runningSince.map { EventLoop.now() &- $0 } ?? 0))
        }
        return WorkerInfo(name: config.name, pid: getpid(), state: s.state, startedAtMs: startedAtMs,
                          runningMs: Int64(runningNs / 1_000_000), vcpus: Int(config.vcpus), memoryBytes: config.memoryBytes,
                          overheadBytes: machine?.overheadBytes() ?? 0, devices: machine?.deviceInfo ?? [], resets: s.resets)
    }

    public func handle(_ request: WorkerRequest, reply: @escaping @Sendable (WorkerResponse) -> Void) {
        let id = request.id
        func fail(_ error: WorkerError) { reply(WorkerResponse(id: id, ok: false, error: error)) }
        func conflict(_ what: String) {
            let now = currentState
            fail(WorkerError(.conflict, "cannot \(what) a VM that is \(now.rawValue)", state: now))
        }
        switch request.op {
        case .hello:
            reply(WorkerResponse(id: id, ok: true, hello: WorkerHello(version: WorkerControl.version, pid: getpid(), name: config.name)))
        case .info:
            reply(WorkerResponse(id: id, ok: true, info: info()))
        case .metrics:
            guard let machine = state.withLock({ $0.machine }) else { return conflict("read the metrics of") }
            reply(WorkerResponse(id: id, ok: true, metrics: machine.metrics()))
        case .pause:
            guard let machine = machine(in: [.running]) else { return conflict("pause") }
            do throws(WorkerError) { try machine.pause() } catch { return fail(error) }
            transition(to: .paused, reason: "paused by request")
            reply(WorkerResponse(id: id, ok: true, info: info()))
        case .resume:
            guard let machine = machine(in: [.paused]) else { return conflict("resume") }
            do throws(WorkerError) { try machine.resume() } catch { return fail(error) }
            transition(to: .running, reason: "resumed by request")
            reply(WorkerResponse(id: id, ok: true, info: info()))
        case .stop:
            guard let machine = machine(in: [.running, .paused]) else { return conflict("stop") }
            transition(to: .stopping, reason: "stopped by request")
            machine.requestStop(.stopped)
            reply(WorkerResponse(id: id, ok: true, info: info()))
        case .reset:
            guard let machine = machine(in: [.running, .paused]) else { return conflict("reset") }
            state.withLock { $0.resetRequested = true }
            machine.requestStop(.reset)
            reply(WorkerResponse(id: id, ok: true, info: info(), detail: "the VM restarts from its config"))
        case .shutdown:
            guard let machine = machine(in: [.running, .paused]) else { return conflict("shut down") }
            shutdown(machine, request: request, reply: reply)
        case .device:
            guard let device = request.device, !device.isEmpty else { return fail(WorkerError(.invalid, "device: missing member 'device'")) }
            guard let body = request.body else { return fail(WorkerError(.invalid, "device: missing member 'body'")) }
            guard Self.isRequestObject(body) else {
                return fail(WorkerError(.invalid, "device: 'body' must be a JSON object with a string member 'op'"))
            }
            guard let machine = machine(in: [.running, .paused]) else { return conflict("send a device request to") }
            machine.deviceRequest(device, json: body) { result in
                switch result {
                case .success(let text): reply(WorkerResponse(id: id, ok: true, deviceResult: text))
                case .failure(let error): reply(WorkerResponse(id: id, ok: false, error: error))
                }
            }
        case .console, .events:
            reply(WorkerResponse(id: id, ok: true))
        }
    }

    private func machine(in states: Set<WorkerState>) -> Machine? {
        state.withLock { s in states.contains(s.state) ? s.machine : nil }
    }

    /// A JSON object with a string `op`: what ABI 1.8 promises a plugin's `control` receives.
    static func isRequestObject(_ text: String) -> Bool {
        struct Op: Decodable { var op: String }
        guard text.utf8.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "{") else { return false }
        return (try? JSONDecoder().decode(Op.self, from: Data(text.utf8))) != nil
    }

    /// The shutdown integration service when the guest has it open, else the ACPI power button
    /// (common.md, "The worker's `shutdown` op").
    private func shutdown(_ machine: Machine, request: WorkerRequest, reply: @escaping @Sendable (WorkerResponse) -> Void) {
        let id = request.id
        let powerButton: @Sendable (String?) -> Void = { [self] why in
            guard let acpi = machine.devices(usingPlugin: "acpi-pm").first else {
                let message = why.map { "the shutdown integration service could not be used (\($0)) and this VM has no ACPI power button" }
                    ?? "this VM has neither the shutdown integration service nor an ACPI power button"
                return reply(WorkerResponse(id: id, ok: false, error: WorkerError(.conflict, message, state: currentState)))
            }
            machine.deviceRequest(acpi, json: #"{"op":"power-button"}"#) { [self] result in
                switch result {
                case .success: reply(WorkerResponse(id: id, ok: true, info: info(), detail: "ACPI power button (device '\(acpi)')"))
                case .failure(let error): reply(WorkerResponse(id: id, ok: false, error: error))
                }
            }
        }
        guard let ic = machine.devices(usingPlugin: "shutdown").first else { return powerButton(nil) }
        struct Body: Encodable {
            var op = "shutdown"
            var action = "shutdown"
            var force: Bool
            var reason: String
        }
        let body = Body(force: request.force ?? false, reason: request.reason ?? "shutdown requested by management")
        guard let data = try? JSONEncoder().encode(body) else { return powerButton("cannot encode the request") }
        machine.deviceRequest(ic, json: String(decoding: data, as: UTF8.self)) { [self] result in
            switch result {
            case .success:
                reply(WorkerResponse(id: id, ok: true, info: info(), detail: "shutdown integration service (device '\(ic)')"))
            case .failure(let error):
                powerButton(error.message)
            }
        }
    }
}
