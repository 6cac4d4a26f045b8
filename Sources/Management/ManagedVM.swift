import WorkerControlProtocol

/// What VMSupervisor knows about one defined VM.
struct ManagedVM: Sendable {
    /// As stored in definition.json: `name` and `restartPolicy` always set.
    var definition: VMDefinition
    var facts: ConfigFacts
    var state: VMState
    var worker: LiveWorker?
    /// How the last worker ended when it was not by API request.
    var lastExit: WorkerExitRecord?
    /// Automatic restarts done by the restart policy.
    var restarts = 0
    var backoff = RestartBackoff()
    /// A pending automatic restart (cancelled by stop, shutdown, delete and start).
    var restartTask: Task<Void, Never>?
    /// The API asked this worker to end (stop or shutdown): its end is Off and never restarted.
    var endRequested = false

    var name: String { definition.name ?? facts.name }
    var policy: RestartPolicy { definition.restartPolicy ?? RestartPolicy() }
}

/// A worker process veneerd follows: spawned by it (`isChild`) or re-attached after a restart.
struct LiveWorker: Sendable {
    let pid: Int32
    /// Distinguishes this worker's callbacks (events, exit) from an earlier worker's.
    let generation: UInt64
    let client: WorkerClient
    let isChild: Bool
    /// `hello` answered: the control socket serves requests.
    var ready = false
    var info: WorkerInfo?
    /// When `info` was fetched (uptime extrapolates from it while Running).
    var infoAt: ContinuousClock.Instant?
    /// When the worker last entered Running, for the restart policy's backoff reset.
    var runningSince: ContinuousClock.Instant?
    var closeEvents: (@Sendable () -> Void)?
}
