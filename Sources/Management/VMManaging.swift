import FoundationEssentials
import WorkerControlProtocol

/// What veneerd's HTTP layer asks of the VM management core. `VMSupervisor` is the real one;
/// route tests may use their own. Every method is safe to call concurrently; names are
/// validated here (`VMName`), so the HTTP layer only maps errors to problem+json.
public protocol VMManaging: Sendable {
    func define(_ definition: VMDefinition) async throws(ManagementError) -> VMDetails
    func list() async -> [VMSummary]
    func info(_ name: String) async throws(ManagementError) -> VMDetails
    /// Off/Failed → Starting → Running (returns once the worker answers `hello`, state Running or Starting).
    func start(_ name: String) async throws(ManagementError) -> VMDetails
    /// Hard off: Running/Paused/Starting → Stopping → Off.
    func stop(_ name: String) async throws(ManagementError) -> VMDetails
    /// Graceful: the shutdown IC when present, else the ACPI power button. Running only.
    func shutdown(_ name: String, force: Bool, reason: String?) async throws(ManagementError) -> VMDetails
    func reset(_ name: String) async throws(ManagementError) -> VMDetails
    func pause(_ name: String) async throws(ManagementError) -> VMDetails
    func resume(_ name: String) async throws(ManagementError) -> VMDetails
    /// Off/Failed only; removes the VM's directory under the state directory.
    func delete(_ name: String) async throws(ManagementError)
    /// A device management request (ABI 1.8) on a Running or Paused VM: the device's JSON result.
    func deviceRequest(_ name: String, device: String, body: String) async throws(ManagementError) -> String
    /// Raw metrics of every VM with a live worker.
    func metrics() async -> [String: WorkerMetrics]
    /// State changes of every VM from now on, until the stream is dropped.
    func events() async -> AsyncStream<VMEvent>
    /// Attaches to a VM's serial console: the recent-output ring, then live output.
    func console(_ name: String) async throws(ManagementError) -> ConsoleAttachment
}

/// A VM name: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}, never "." or "..": it names a directory.
public enum VMName {
    public static func validate(_ name: String) throws(ManagementError) {
        let bytes = Array(name.utf8)
        func ok(_ b: UInt8, first: Bool) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || (!first && (b == 0x5F || b == 0x2E || b == 0x2D))
        }
        guard (1...64).contains(bytes.count), ok(bytes[0], first: true), bytes.dropFirst().allSatisfy({ ok($0, first: false) }) else {
            throw .invalid(field: "name", reason: "'\(name)' is not a VM name: 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit")
        }
    }
}

/// Hyper-V's states (Msvm_ComputerSystem) plus Failed: the worker died or could not start.
public enum VMState: String, Codable, Sendable, CaseIterable {
    case off = "Off"
    case starting = "Starting"
    case running = "Running"
    case paused = "Paused"
    case saving = "Saving"
    case saved = "Saved"
    case stopping = "Stopping"
    case failed = "Failed"
}

public struct RestartPolicy: Codable, Sendable, Equatable {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        case never
        /// Restart after the worker died or the VM failed (not after a clean power-off or stop).
        case onFailure = "on-failure"
        /// Restart whenever the VM ends, except by `stop`/`shutdown`/`delete` through the API.
        case always
    }

    public var mode: Mode
    /// First restart delay; doubles per consecutive restart up to `maxBackoffMs`, reset after
    /// 60 s of Running.
    public var initialBackoffMs: Int
    public var maxBackoffMs: Int

    public init(mode: Mode = .never, initialBackoffMs: Int = 1000, maxBackoffMs: Int = 60_000) {
        self.mode = mode
        self.initialBackoffMs = initialBackoffMs
        self.maxBackoffMs = maxBackoffMs
    }
}

/// What `define` takes: the VM config as TOML text, validated as `veneer check` does.
public struct VMDefinition: Codable, Sendable, Equatable {
    /// Optional: the config's own `name` is used when absent; when present they must agree.
    public var name: String?
    public var config: String
    /// Absolute directory the config's relative paths (images, disks) resolve against.
    public var directory: String
    public var restartPolicy: RestartPolicy?

    public init(name: String? = nil, config: String, directory: String, restartPolicy: RestartPolicy? = nil) {
        self.name = name
        self.config = config
        self.directory = directory
        self.restartPolicy = restartPolicy
    }
}

public struct VMSummary: Codable, Sendable, Equatable {
    public var name: String
    public var state: VMState
    public var vcpus: Int
    public var memoryBytes: UInt64
    public var pid: Int32?
    /// Time Running since the last start (paused time excluded), ms; nil when not running.
    public var uptimeMs: Int64?

    public init(name: String, state: VMState, vcpus: Int, memoryBytes: UInt64, pid: Int32?, uptimeMs: Int64?) {
        self.name = name
        self.state = state
        self.vcpus = vcpus
        self.memoryBytes = memoryBytes
        self.pid = pid
        self.uptimeMs = uptimeMs
    }
}

public struct VMDetails: Codable, Sendable, Equatable {
    public var summary: VMSummary
    public var config: String
    public var directory: String
    public var restartPolicy: RestartPolicy
    /// The live worker's view (devices, overhead) when one runs.
    public var worker: WorkerInfo?
    /// How the last worker ended, when it did not end by API request (Failed shows why).
    public var lastExit: WorkerExitRecord?
    public var restarts: Int
    /// Guest heartbeat from the heartbeat IC when present: "ok", "degraded", "no-contact", "not-connected".
    public var heartbeat: String?

    public init(summary: VMSummary, config: String, directory: String, restartPolicy: RestartPolicy, worker: WorkerInfo?,
                lastExit: WorkerExitRecord?, restarts: Int, heartbeat: String?) {
        self.summary = summary
        self.config = config
        self.directory = directory
        self.restartPolicy = restartPolicy
        self.worker = worker
        self.lastExit = lastExit
        self.restarts = restarts
        self.heartbeat = heartbeat
    }
}

public struct VMEvent: Codable, Sendable, Equatable {
    public var timeMs: Int64
    public var name: String
    public var state: VMState
    public var reason: String
    public init(timeMs: Int64, name: String, state: VMState, reason: String) {
        self.timeMs = timeMs
        self.name = name
        self.state = state
        self.reason = reason
    }
}

/// A console attachment: output arrives on `output`; `send` writes guest input; `close` detaches
/// (the VM keeps running).
public struct ConsoleAttachment: Sendable {
    public var output: AsyncStream<[UInt8]>
    public var send: @Sendable ([UInt8]) async -> Void
    public var close: @Sendable () async -> Void
    public init(output: AsyncStream<[UInt8]>, send: @escaping @Sendable ([UInt8]) async -> Void, close: @escaping @Sendable () async -> Void) {
        self.output = output
        self.send = send
        self.close = close
    }
}

public enum ManagementError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 404
    case notFound(name: String)
    /// 409: a VM of that name exists.
    case exists(name: String)
    /// 409: the operation is not allowed in `state`.
    case invalidTransition(name: String, operation: String, state: VMState)
    /// 400 (422 for a config that parses but does not validate): a field, and what is wrong with it.
    case invalid(field: String, reason: String)
    /// 404: no such device in the VM.
    case noDevice(name: String, device: String)
    /// The worker or device said no (mapped from `WorkerError.Code`).
    case worker(WorkerError)
    /// 500: something on the host failed (spawning, the state directory, ...).
    case host(String)

    public var description: String {
        switch self {
        case .notFound(let name): "no VM named '\(name)'"
        case .exists(let name): "a VM named '\(name)' already exists"
        case .invalidTransition(let name, let op, let state): "cannot \(op) VM '\(name)': it is \(state.rawValue)"
        case .invalid(let field, let reason): "\(field): \(reason)"
        case .noDevice(let name, let device): "VM '\(name)' has no device '\(device)'"
        case .worker(let e): e.message
        case .host(let message): message
        }
    }
}
