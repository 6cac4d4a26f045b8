import FoundationEssentials

/// The control protocol between veneerd and one worker (`veneer run --control-dir DIR`), over the
/// UNIX stream socket `DIR/control.sock` (mode 0600). Newline-delimited JSON: each line the client
/// sends is one `WorkerRequest`; the worker answers each with one `WorkerResponse` line, in order.
/// Two ops turn the connection into a stream after their response line: `console` (raw bytes
/// both ways: first the recent-output ring, then live output; bytes sent are the guest's serial
/// input) and `events` (one `WorkerEvent` line per change, from the current state on).
///
/// Besides the socket the worker keeps, in DIR: `worker.pid` (its pid, written before the socket
/// listens) and `exit.json` (a `WorkerExitRecord`, written just before it exits), so a veneerd
/// that restarts can re-attach to a live worker and learn how a dead one ended.
///
/// The protocol is versioned by `WorkerControl.version`; `hello` returns the worker's, and a
/// client refuses a worker with another major.
public enum WorkerControl {
    public static let version = 1
    public static let socketName = "control.sock"
    public static let pidFileName = "worker.pid"
    public static let exitRecordName = "exit.json"
    /// Longest request line the worker reads; a longer one ends the connection with an error.
    public static let maxRequestBytes = 1 << 20
}

public struct WorkerRequest: Codable, Sendable, Equatable {
    public enum Op: String, Codable, Sendable, CaseIterable {
        /// → `hello`: protocol version, pid, VM name.
        case hello
        /// → `info`.
        case info
        /// Every vCPU leaves KVM_RUN and stays out; device timers freeze. → `info`.
        case pause
        case resume
        /// Hard off: the worker stops the VM and exits (exit record reason "stopped"). → `info`.
        case stop
        /// Graceful: the shutdown integration service when the guest has connected it, else the
        /// ACPI power button. Answers once the request was delivered, not when the guest is off
        /// (watch `events`). → `info` plus `detail` naming the path used.
        case shutdown
        /// Hard reset: the VM restarts from its config in the same worker. → `info`.
        case reset
        /// → `metrics`.
        case metrics
        /// A management request to device `device` with JSON object `body` (ABI 1.8 `control`).
        /// → `deviceResult` (the device's JSON result).
        case device
        /// Becomes a console stream (see above).
        case console
        /// Becomes an event stream (see above).
        case events
    }

    public var id: UInt64
    public var op: Op
    /// For `device`: the device id (the config's `[[device]] id`).
    public var device: String?
    /// For `device`: the request, a JSON object text with at least `op`.
    public var body: String?
    /// For `shutdown`: force applications closed (the shutdown IC's flag); ignored by the ACPI path.
    public var force: Bool?
    /// For `shutdown`: a reason text the guest may log.
    public var reason: String?

    public init(id: UInt64, op: Op, device: String? = nil, body: String? = nil, force: Bool? = nil, reason: String? = nil) {
        self.id = id
        self.op = op
        self.device = device
        self.body = body
        self.force = force
        self.reason = reason
    }
}

public struct WorkerResponse: Codable, Sendable, Equatable {
    public var id: UInt64
    public var ok: Bool
    public var error: WorkerError?
    public var hello: WorkerHello?
    public var info: WorkerInfo?
    public var metrics: WorkerMetrics?
    /// For `device`: the device's JSON result text.
    public var deviceResult: String?
    /// A short note on how a request was carried out (e.g. "shutdown integration service").
    public var detail: String?

    public init(id: UInt64, ok: Bool, error: WorkerError? = nil, hello: WorkerHello? = nil, info: WorkerInfo? = nil,
                metrics: WorkerMetrics? = nil, deviceResult: String? = nil, detail: String? = nil) {
        self.id = id
        self.ok = ok
        self.error = error
        self.hello = hello
        self.info = info
        self.metrics = metrics
        self.deviceResult = deviceResult
        self.detail = detail
    }
}

public struct WorkerError: Codable, Sendable, Equatable, Error {
    public enum Code: String, Codable, Sendable {
        /// The request is malformed (unknown op, missing member, bad JSON): HTTP 400.
        case invalid
        /// Not possible in the VM's current state (`state` says which): HTTP 409.
        case conflict
        /// No such device: HTTP 404.
        case notFound
        /// The device has no such op: HTTP 501.
        case unsupported
        /// The device or guest did not answer in time: HTTP 504.
        case timeout
        /// It was tried and failed: HTTP 500.
        case failed
    }

    public var code: Code
    public var message: String
    public var state: WorkerState?

    public init(_ code: Code, _ message: String, state: WorkerState? = nil) {
        self.code = code
        self.message = message
        self.state = state
    }
}

/// The VM's state as the worker sees it. veneerd adds Off, Saving/Saved and Failed around these.
public enum WorkerState: String, Codable, Sendable, CaseIterable {
    /// Assembling the machine; vCPUs have not entered the guest yet.
    case starting = "Starting"
    case running = "Running"
    case paused = "Paused"
    /// A stop, power-off or guest exit is under way; the worker exits next.
    case stopping = "Stopping"
}

public struct WorkerHello: Codable, Sendable, Equatable {
    public var version: Int
    public var pid: Int32
    public var name: String
    public init(version: Int, pid: Int32, name: String) {
        self.version = version
        self.pid = pid
        self.name = name
    }
}

public struct WorkerInfo: Codable, Sendable, Equatable {
    public struct Device: Codable, Sendable, Equatable {
        public var id: String
        public var plugin: String
        public var version: String
        /// "emulated", "synthetic" or "passthrough".
        public var kind: String
        public init(id: String, plugin: String, version: String, kind: String) {
            self.id = id
            self.plugin = plugin
            self.version = version
            self.kind = kind
        }
    }

    public var name: String
    public var pid: Int32
    public var state: WorkerState
    /// CLOCK_REALTIME of the worker's start, in ms since the epoch.
    public var startedAtMs: Int64
    /// Time spent Running (paused time excluded), in ms.
    public var runningMs: Int64
    public var vcpus: Int
    public var memoryBytes: UInt64
    /// The worker's resident memory beyond guest RAM it touched (VmRSS minus guest pages resident), bytes.
    public var overheadBytes: UInt64
    public var devices: [Device]
    /// How many times the guest was reset in this worker.
    public var resets: Int

    public init(name: String, pid: Int32, state: WorkerState, startedAtMs: Int64, runningMs: Int64, vcpus: Int,
                memoryBytes: UInt64, overheadBytes: UInt64, devices: [Device], resets: Int) {
        self.name = name
        self.pid = pid
        self.state = state
        self.startedAtMs = startedAtMs
        self.runningMs = runningMs
        self.vcpus = vcpus
        self.memoryBytes = memoryBytes
        self.overheadBytes = overheadBytes
        self.devices = devices
        self.resets = resets
    }
}

/// Raw counters; veneerd renders them in Prometheus text.
public struct WorkerMetrics: Codable, Sendable, Equatable {
    public struct VCPU: Codable, Sendable, Equatable {
        public var index: Int
        /// Exits by reason name ("io", "mmio", "msr_read", "msr_write", "hlt", "intr", "hypercall", ...).
        public var exits: [String: UInt64]
        public init(index: Int, exits: [String: UInt64]) {
            self.index = index
            self.exits = exits
        }
    }

    public struct Metric: Codable, Sendable, Equatable {
        /// "counter" or "gauge".
        public var kind: String
        public var name: String
        public var help: String
        public var value: Double
        public init(kind: String, name: String, help: String, value: Double) {
            self.kind = kind
            self.name = name
            self.help = help
            self.value = value
        }
    }

    public var vcpus: [VCPU]
    /// VMBus host counters: "messages_in", "messages_out", "packets_in", "packets_out", "signals_in", "interrupts_out".
    public var vmbus: [String: UInt64]
    /// Plugin-published metrics (ABI 1.8), by device id.
    public var devices: [String: [Metric]]

    public init(vcpus: [VCPU], vmbus: [String: UInt64], devices: [String: [Metric]]) {
        self.vcpus = vcpus
        self.vmbus = vmbus
        self.devices = devices
    }
}

public struct WorkerEvent: Codable, Sendable, Equatable {
    /// CLOCK_REALTIME, ms since the epoch.
    public var timeMs: Int64
    public var state: WorkerState
    /// What caused it ("paused by request", "guest powered off", ...).
    public var reason: String
    public init(timeMs: Int64, state: WorkerState, reason: String) {
        self.timeMs = timeMs
        self.state = state
        self.reason = reason
    }
}

/// How a worker ended, written to `exit.json` just before it exits.
public struct WorkerExitRecord: Codable, Sendable, Equatable {
    /// "powerOff", "guestExit", "stopped" (a `stop` request or SIGTERM), "fault", "deviceError", "signal".
    public var reason: String
    /// The worker's exit status (as `veneer run` documents it).
    public var status: Int32
    /// One paragraph: the MachineExit's description (a fault's register report included).
    public var message: String
    public var timeMs: Int64
    public init(reason: String, status: Int32, message: String, timeMs: Int64) {
        self.reason = reason
        self.status = status
        self.message = message
        self.timeMs = timeMs
    }
}
