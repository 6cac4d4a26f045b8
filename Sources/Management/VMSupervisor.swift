import FoundationEssentials
import Logging
import WorkerControlProtocol
#if canImport(Glibc)
import Glibc
#endif

/// veneerd's core (Hyper-V's VMMS): VM definitions under a state directory and one supervised
/// worker process (`veneer run CONFIG --control-dir <vm>/run`) per running VM.
///
/// Config paths: a definition's config is stored as `<vm>/config.toml` and its relative paths
/// resolve against the definition's `directory`, which the worker and `veneer check` are told
/// with `--base-directory`; so the stored file runs exactly as the original would have.
///
/// Workers run in their own session and outlive veneerd; a new VMSupervisor on the same state
/// directory re-attaches to every live one (pid file, pidfd, `hello` naming the VM) and learns
/// how dead ones ended from their exit records.
public actor VMSupervisor: VMManaging {
    private let stateDirectory: StateDirectory
    private let workerExecutable: String
    private let pluginSearchPaths: [String]
    private let logger: Logging.Logger
    private let broadcaster = EventBroadcaster()
    private var vms: [String: ManagedVM] = [:]
    /// Names whose definition is being written (a concurrent define of the same name is refused).
    private var reserved: Set<String> = []
    private var nextGeneration: UInt64 = 1
    private var nextStagingID = 0

    /// How long a worker has to answer `hello` after it was spawned.
    static let startTimeout: Duration = .seconds(60)
    /// How long a stopped worker has to exit before it is killed.
    static let stopGrace: Duration = .seconds(10)
    /// How long `veneer check` may take.
    static let checkTimeout: Duration = .seconds(60)
    /// The largest config accepted (as `veneer` reads).
    static let maxConfigBytes = 1 << 20
    /// sun_path holds 108 bytes with the terminating NUL.
    static let maxSocketPathBytes = 107

    public init(stateDirectory: String, workerExecutable: String, pluginSearchPaths: [String],
                logger: Logging.Logger) async throws(ManagementError) {
        self.stateDirectory = try StateDirectory(root: stateDirectory)
        self.workerExecutable = workerExecutable
        self.pluginSearchPaths = pluginSearchPaths
        self.logger = logger
        guard access(workerExecutable, X_OK) == 0 else {
            throw .invalid(field: "workerExecutable", reason: "'\(workerExecutable)' is not an executable file")
        }
        for name in try self.stateDirectory.vmNames() {
            do { try await load(name) } catch {
                logger.error("cannot load the VM definition", metadata: ["vm": "\(name)", "error": "\(error)"])
            }
        }
    }

    // MARK: VMManaging

    public func define(_ definition: VMDefinition) async throws(ManagementError) -> VMDetails {
        if let name = definition.name { try VMName.validate(name) }
        guard definition.directory.hasPrefix("/"), StateDirectory.isDirectory(definition.directory) else {
            throw .invalid(field: "directory", reason: "'\(definition.directory)' is not an absolute path to an existing directory")
        }
        guard definition.config.utf8.count <= Self.maxConfigBytes else {
            throw .invalid(field: "config", reason: "the config has \(definition.config.utf8.count) bytes, more than \(Self.maxConfigBytes)")
        }
        if let policy = definition.restartPolicy {
            guard policy.initialBackoffMs >= 0, policy.maxBackoffMs >= policy.initialBackoffMs, policy.maxBackoffMs <= 86_400_000 else {
                throw .invalid(field: "restartPolicy", reason: "backoff must satisfy 0 <= initialBackoffMs <= maxBackoffMs <= 86400000")
            }
        }
        if let name = definition.name, vms[name] != nil || reserved.contains(name) { throw .exists(name: name) }

        try await check(definition.config, directory: definition.directory)
        let facts = try ConfigFacts.read(definition.config, file: "config", baseDirectory: definition.directory)
        let name = definition.name ?? facts.name
        try VMName.validate(name)
        guard facts.name == name else {
            throw .invalid(field: "name", reason: "the definition names the VM '\(name)' but its config says name = \"\(facts.name)\"")
        }
        let socketPath = try stateDirectory.path(name, StateDirectory.runDirectory) + "/" + WorkerControl.socketName
        guard socketPath.utf8.count <= Self.maxSocketPathBytes else {
            throw .invalid(field: "name", reason: "the worker's socket path '\(socketPath)' would be longer than \(Self.maxSocketPathBytes) bytes; use a shorter name or state directory")
        }
        guard vms[name] == nil, !reserved.contains(name) else { throw .exists(name: name) }
        reserved.insert(name)
        defer { reserved.remove(name) }

        var stored = definition
        stored.name = name
        stored.restartPolicy = definition.restartPolicy ?? RestartPolicy()
        let dir = try stateDirectory.vmPath(name)
        do {
            try StateDirectory.makeDirectory(dir)
            try StateDirectory.makeDirectory(dir + "/" + StateDirectory.runDirectory)
            try StateDirectory.writeAtomically(dir + "/" + StateDirectory.configFile, Array(definition.config.utf8))
            try StateDirectory.writeAtomically(dir + "/" + StateDirectory.definitionFile, try encode(stored))
        } catch {
            try? StateDirectory.removeTree(dir)
            throw error
        }
        vms[name] = ManagedVM(definition: stored, facts: facts, state: .off)
        log(name).info("defined")
        publish(name, .off, "defined")
        return try details(name)
    }

    public func list() async -> [VMSummary] {
        vms.sorted { $0.key < $1.key }.map { summary($0.value) }
    }

    public func info(_ name: String) async throws(ManagementError) -> VMDetails {
        try VMName.validate(name)
        guard let vm = vms[name] else { throw .notFound(name: name) }
        var heartbeat: String?
        if let worker = vm.worker, worker.ready {
            if let response = try? await worker.client.call(.info, timeout: .seconds(2)), let info = response.info {
                updateInfo(name, generation: worker.generation, info)
            }
            if let device = (vms[name]?.worker?.info ?? worker.info)?.devices.first(where: { $0.plugin == "heartbeat" }) {
                heartbeat = await heartbeatState(worker.client, device: device.id)
            }
        }
        var result = try details(name)
        result.heartbeat = heartbeat
        return result
    }

    public func start(_ name: String) async throws(ManagementError) -> VMDetails {
        try VMName.validate(name)
        guard let vm = vms[name] else { throw .notFound(name: name) }
        try VMOperation.start.check(name, in: vm.state)
        vms[name]?.restartTask?.cancel()
        vms[name]?.restartTask = nil
        vms[name]?.backoff.reset()
        try await launch(name, reason: "started by request")
        return try details(name)
    }

    public func stop(_ name: String) async throws(ManagementError) -> VMDetails {
        try VMName.validate(name)
        guard let vm = vms[name] else { throw .notFound(name: name) }
        if vm.restartTask != nil, vm.state == .off || vm.state == .failed {
            // Stopping a VM that waits for an automatic restart cancels the restart.
            cancelRestart(name)
            return try details(name)
        }
        if vm.state == .stopping, vm.worker != nil {
            vms[name]?.endRequested = true
        } else {
            try VMOperation.stop.check(name, in: vm.state)
        }
        guard let worker = vm.worker else { throw .invalidTransition(name: name, operation: "stop", state: vm.state) }
        cancelRestart(name)
        vms[name]?.endRequested = true
        setState(name, .stopping, "stopping by request")
        var delivered = false
        if worker.ready {
            do {
                _ = try await worker.client.call(.stop, timeout: .seconds(5))
                delivered = true
            } catch {
                log(name).notice("the worker did not take the stop request; sending SIGTERM", metadata: ["error": "\(error)"])
            }
        }
        if !delivered { signalWorker(name, generation: worker.generation, SIGTERM) }
        if !(await waitForEnd(name, generation: worker.generation, timeout: Self.stopGrace)) {
            log(name).warning("the worker did not exit after stop; killing it")
            signalWorker(name, generation: worker.generation, SIGKILL)
            _ = await waitForEnd(name, generation: worker.generation, timeout: Self.stopGrace)
        }
        return try details(name)
    }

    public func shutdown(_ name: String, force: Bool, reason: String?) async throws(ManagementError) -> VMDetails {
        try VMName.validate(name)
        guard let vm = vms[name] else { throw .notFound(name: name) }
        if vm.restartTask != nil, vm.state == .off || vm.state == .failed {
            cancelRestart(name)
            return try details(name)
        }
        try VMOperation.shutdown.check(name, in: vm.state)
        if let reason, reason.utf8.count > 1024 {
            throw .invalid(field: "reason", reason: "at most 1024 bytes")
        }
        guard let worker = vm.worker, worker.ready else { throw .invalidTransition(name: name, operation: "shutdown", state: vm.state) }
        cancelRestart(name)
        vms[name]?.endRequested = true
        do {
            let response = try await worker.client.call(.shutdown, force: force, reason: reason, timeout: .seconds(30))
            if let info = response.info { updateInfo(name, generation: worker.generation, info) }
            log(name).info("shutdown requested", metadata: ["path": "\(response.detail ?? "")"])
        } catch {
            if vms[name]?.worker?.generation == worker.generation { vms[name]?.endRequested = false }
            throw error
        }
        return try details(name)
    }

    public func reset(_ name: String) async throws(ManagementError) -> VMDetails {
        try await simpleRequest(name, .reset, operation: .reset)
    }

    public func pause(_ name: String) async throws(ManagementError) -> VMDetails {
        try await simpleRequest(name, .pause, operation: .pause)
    }

    public func resume(_ name: String) async throws(ManagementError) -> VMDetails {
        try await simpleRequest(name, .resume, operation: .resume)
    }

    public func delete(_ name: String) async throws(ManagementError) {
        try VMName.validate(name)
        guard let vm = vms[name] else { throw .notFound(name: name) }
        try VMOperation.delete.check(name, in: vm.state)
        guard vm.worker == nil else { throw .invalidTransition(name: name, operation: "delete", state: vm.state) }
        cancelRestart(name)
        try StateDirectory.removeTree(try stateDirectory.vmPath(name))
        StateDirectory.syncDirectory(of: try stateDirectory.vmPath(name))
        vms[name] = nil
        log(name).info("deleted")
        publish(name, .off, "deleted")
    }

    public func deviceRequest(_ name: String, device: String, body: String) async throws(ManagementError) -> String {
        try VMName.validate(name)
        guard let vm = vms[name] else { throw .notFound(name: name) }
        try VMOperation.deviceRequest.check(name, in: vm.state)
        guard let worker = vm.worker, worker.ready else { throw .invalidTransition(name: name, operation: VMOperation.deviceRequest.rawValue, state: vm.state) }
        if let devices = worker.info?.devices, !devices.contains(where: { $0.id == device }) {
            throw .noDevice(name: name, device: device)
        }
        do {
            let response = try await worker.client.call(.device, device: device, body: body, timeout: .seconds(30))
            return response.deviceResult ?? "{}"
        } catch {
            if case .worker(let e) = error, e.code == .notFound { throw .noDevice(name: name, device: device) }
            throw error
        }
    }

    public func metrics() async -> [String: WorkerMetrics] {
        let clients = vms.values.compactMap { vm in vm.worker.flatMap { $0.ready ? (vm.name, $0.client) : nil } }
        return await withTaskGroup(of: (String, WorkerMetrics?).self) { group in
            for (name, client) in clients {
                group.addTask { (name, try? await client.call(.metrics, timeout: .seconds(5)).metrics) }
            }
            var result: [String: WorkerMetrics] = [:]
            for await (name, metrics) in group {
                if let metrics { result[name] = metrics }
            }
            return result
        }
    }

    public func events() async -> AsyncStream<VMEvent> { broadcaster.subscribe() }

    public func console(_ name: String) async throws(ManagementError) -> ConsoleAttachment {
        try VMName.validate(name)
        guard let vm = vms[name] else { throw .notFound(name: name) }
        try VMOperation.console.check(name, in: vm.state)
        guard let worker = vm.worker, worker.ready else { throw .invalidTransition(name: name, operation: VMOperation.console.rawValue, state: vm.state) }
        return try await worker.client.console()
    }

    // MARK: starting a worker

    /// Off/Failed → Starting → (hello) Running or Starting. Throws when the worker could not be
    /// started or ended before it answered.
    private func launch(_ name: String, reason: String) async throws(ManagementError) {
        guard let vm = vms[name] else { throw .notFound(name: name) }
        let dir = try stateDirectory.vmPath(name)
        let runDir = dir + "/" + StateDirectory.runDirectory
        try StateDirectory.makeDirectory(runDir)
        // Leftovers of a worker that was killed: they must not be mistaken for the new one's.
        for file in [WorkerControl.exitRecordName, WorkerControl.pidFileName, WorkerControl.socketName] {
            unlink(runDir + "/" + file)
        }
        let generation = nextGeneration
        nextGeneration += 1
        vms[name]?.endRequested = false
        setState(name, .starting, reason)

        var arguments = ["run", dir + "/" + StateDirectory.configFile, "--control-dir", runDir,
                         "--base-directory", vm.definition.directory]
        for path in pluginSearchPaths { arguments += ["--plugin-path", path] }
        let pid: pid_t
        do {
            pid = try ProcessSpawner.spawn(workerExecutable, arguments, workingDirectory: dir,
                                           outputFile: dir + "/" + StateDirectory.logFile, newSession: true)
        } catch {
            let record = WorkerExitRecord(reason: "spawn", status: -1, message: error.description, timeMs: Self.nowMs())
            vms[name]?.lastExit = record
            setState(name, .failed, "the worker could not be started: \(error.description)")
            throw .host("VM '\(name)': \(error.description)")
        }
        let client = WorkerClient(socketPath: runDir + "/" + WorkerControl.socketName, name: name)
        vms[name]?.worker = LiveWorker(pid: pid, generation: generation, client: client, isChild: true)
        log(name).info("worker spawned", metadata: ["pid": "\(pid)"])
        guard let pidfd = ExitWatcher.openPidfd(pid) else {
            // Only possible when pidfds are unavailable: the child cannot be watched, so stop it.
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            vms[name]?.worker = nil
            setState(name, .failed, "cannot watch the worker: pidfd_open failed")
            throw .host("VM '\(name)': cannot watch the worker (pidfd_open: \(StateDirectory.errnoText()))")
        }
        watchExit(name, generation: generation, pid: pid, pidfd: pidfd)

        let clock = ContinuousClock()
        let deadline = clock.now + Self.startTimeout
        var lastError: ManagementError?
        while clock.now < deadline {
            guard vms[name]?.worker?.generation == generation else {
                let why = vms[name]?.lastExit.map { "\($0.reason): \($0.message)" } ?? lastError?.description ?? "the worker ended"
                throw .worker(WorkerError(.failed, "VM '\(name)' did not start: \(why)"))
            }
            do {
                let response = try await client.call(.hello, timeout: .seconds(2))
                try verify(response.hello, name: name, expectedPID: pid, expectedName: vm.facts.name)
                try await attach(name, generation: generation)
                return
            } catch {
                lastError = error
                if case .invalid = error { break }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        guard vms[name]?.worker?.generation == generation else {
            let why = vms[name]?.lastExit.map { "\($0.reason): \($0.message)" } ?? "the worker ended"
            throw .worker(WorkerError(.failed, "VM '\(name)' did not start: \(why)"))
        }
        log(name).error("the worker did not answer hello; killing it", metadata: ["error": "\(lastError?.description ?? "timeout")"])
        signalWorker(name, generation: generation, SIGKILL)
        _ = await waitForEnd(name, generation: generation, timeout: Self.stopGrace)
        throw .worker(WorkerError(.timeout, "VM '\(name)': the worker did not answer on its control socket within \(Self.startTimeout): \(lastError?.description ?? "")"))
    }

    private func verify(_ hello: WorkerHello?, name: String, expectedPID: pid_t?, expectedName: String) throws(ManagementError) {
        guard let hello else { throw .host("VM '\(name)': the worker's hello has no hello member") }
        guard hello.version == WorkerControl.version else {
            throw .invalid(field: "workerExecutable", reason: "the worker speaks control protocol \(hello.version), veneerd \(WorkerControl.version)")
        }
        guard hello.name == expectedName, expectedPID == nil || hello.pid == expectedPID else {
            throw .invalid(field: "worker", reason: "the worker on '\(name)'s socket is VM '\(hello.name)' (pid \(hello.pid))")
        }
    }

    /// The worker answered hello: follow its events and take its info.
    private func attach(_ name: String, generation: UInt64) async throws(ManagementError) {
        guard let worker = vms[name]?.worker, worker.generation == generation else { return }
        let (events, close) = try await worker.client.events()
        guard vms[name]?.worker?.generation == generation else {
            close()
            return
        }
        vms[name]?.worker?.ready = true
        vms[name]?.worker?.closeEvents = close
        Task { [weak self] in
            for await event in events {
                guard let self else { return }
                await self.workerEvent(name, generation: generation, event)
            }
        }
        if let info = try? await worker.client.call(.info, timeout: .seconds(5)).info {
            updateInfo(name, generation: generation, info)
        }
    }

    private func watchExit(_ name: String, generation: UInt64, pid: pid_t, pidfd: Int32) {
        Task { [weak self] in
            let termination = await ExitWatcher.shared.waitForExit(pid: pid, pidfd: pidfd)
            await self?.workerEnded(name, generation: generation, termination: termination)
        }
    }

    // MARK: following a worker

    private func workerEvent(_ name: String, generation: UInt64, _ event: WorkerEvent) {
        guard let vm = vms[name], let worker = vm.worker, worker.generation == generation else { return }
        let state: VMState = switch event.state {
        case .starting: .starting
        case .running: .running
        case .paused: .paused
        case .stopping: .stopping
        }
        if vm.endRequested, vm.state == .stopping, state != .stopping { return }
        if state == .running, vm.state != .running { vms[name]?.worker?.runningSince = ContinuousClock.now }
        if state != vm.state { setState(name, state, event.reason, timeMs: event.timeMs) }
        if var info = worker.info {
            info.state = event.state
            vms[name]?.worker?.info = info
        }
    }

    private func updateInfo(_ name: String, generation: UInt64, _ info: WorkerInfo) {
        guard vms[name]?.worker?.generation == generation else { return }
        vms[name]?.worker?.info = info
        vms[name]?.worker?.infoAt = ContinuousClock.now
        if info.state == .running, vms[name]?.worker?.runningSince == nil { vms[name]?.worker?.runningSince = ContinuousClock.now }
    }

    /// The worker process ended: Off or Failed from its exit record, then the restart policy.
    private func workerEnded(_ name: String, generation: UInt64, termination: ProcessTermination?) {
        guard var vm = vms[name], let worker = vm.worker, worker.generation == generation else { return }
        worker.closeEvents?()
        vm.worker = nil
        let runDir = (try? stateDirectory.path(name, StateDirectory.runDirectory)) ?? ""
        var record: WorkerExitRecord?
        if let bytes = try? StateDirectory.read(runDir + "/" + WorkerControl.exitRecordName, limit: 1 << 20) {
            record = try? JSONDecoder().decode(WorkerExitRecord.self, from: Data(bytes))
        }
        let outcome = Self.outcome(record: record, termination: termination, requested: vm.endRequested)
        let ranMs = worker.runningSince.map { Self.milliseconds(ContinuousClock.now - $0) } ?? 0
        vm.backoff.ended(afterRunningMs: ranMs)
        vm.lastExit = vm.endRequested ? nil : outcome.record
        let restart = !vm.endRequested && RestartBackoff.shouldRestart(vm.policy, failed: outcome.state == .failed)
        vm.endRequested = false
        vms[name] = vm
        // A worker that died without its record gets the one made up here, so a later veneerd
        // still shows Failed and why.
        if record == nil, outcome.state == .failed, let bytes = try? JSONEncoder().encode(outcome.record) {
            try? StateDirectory.writeAtomically(runDir + "/" + WorkerControl.exitRecordName, Array(bytes))
        }
        // Files a worker killed without cleaning up leaves behind.
        unlink(runDir + "/" + WorkerControl.pidFileName)
        unlink(runDir + "/" + WorkerControl.socketName)
        log(name).log(level: outcome.state == .failed ? .warning : .info, "worker ended",
                      metadata: ["pid": "\(worker.pid)", "reason": "\(outcome.reason)"])
        setState(name, outcome.state, outcome.reason)
        if restart { scheduleRestart(name) }
    }

    /// Off for an end the API asked for, a guest power-off or a guest exit with status 0;
    /// Failed otherwise, with the record (made up from the wait status when the worker wrote none).
    static func outcome(record: WorkerExitRecord?, termination: ProcessTermination?, requested: Bool) -> (state: VMState, reason: String, record: WorkerExitRecord) {
        let record = record ?? WorkerExitRecord(
            reason: "crash",
            status: termination.map { if case .exited(let s) = $0 { s } else if case .signaled(let sig) = $0 { 128 + sig } else { -1 } } ?? -1,
            message: "the worker ended (\(termination?.description ?? "how is unknown: not veneerd's child")) without writing an exit record",
            timeMs: nowMs())
        if requested { return (.off, "stopped by request", record) }
        switch record.reason {
        case "powerOff": return (.off, "guest powered off", record)
        case "stopped": return (.off, "stopped (\(record.message))", record)
        case "guestExit" where record.status == 0: return (.off, "guest exited with status 0", record)
        default: return (.failed, "\(record.reason): \(record.message)", record)
        }
    }

    private func scheduleRestart(_ name: String) {
        guard var vm = vms[name] else { return }
        let delayMs = vm.backoff.nextDelayMs(vm.policy)
        log(name).notice("restarting by policy", metadata: ["policy": "\(vm.policy.mode.rawValue)", "delayMs": "\(delayMs)"])
        vm.restartTask = Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(delayMs))
            guard !Task.isCancelled else { return }
            await self?.automaticRestart(name)
        }
        vms[name] = vm
    }

    private func automaticRestart(_ name: String) async {
        guard let vm = vms[name], vm.restartTask != nil, !(vm.restartTask?.isCancelled ?? true),
              vm.state == .off || vm.state == .failed else { return }
        vms[name]?.restartTask = nil
        vms[name]?.restarts += 1
        do { try await launch(name, reason: "restarted by policy \(vm.policy.mode.rawValue)") } catch {
            log(name).warning("automatic restart failed", metadata: ["error": "\(error)"])
        }
    }

    private func cancelRestart(_ name: String) {
        vms[name]?.restartTask?.cancel()
        vms[name]?.restartTask = nil
    }

    /// Waits (polling the actor's own state, bounded) until the worker of `generation` has ended.
    private func waitForEnd(_ name: String, generation: UInt64, timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while vms[name]?.worker?.generation == generation {
            guard clock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    private func signalWorker(_ name: String, generation: UInt64, _ signal: Int32) {
        guard let worker = vms[name]?.worker, worker.generation == generation else { return }
        kill(worker.pid, signal)
    }

    private func simpleRequest(_ name: String, _ op: WorkerRequest.Op, operation: VMOperation) async throws(ManagementError) -> VMDetails {
        try VMName.validate(name)
        guard let vm = vms[name] else { throw .notFound(name: name) }
        try operation.check(name, in: vm.state)
        guard let worker = vm.worker, worker.ready else { throw .invalidTransition(name: name, operation: operation.rawValue, state: vm.state) }
        let response: WorkerResponse
        do { response = try await worker.client.call(op, timeout: .seconds(15)) } catch {
            if case .worker(let e) = error, e.code == .conflict, let current = vms[name]?.state {
                throw .invalidTransition(name: name, operation: operation.rawValue, state: current)
            }
            throw error
        }
        if let info = response.info {
            updateInfo(name, generation: worker.generation, info)
            workerEvent(name, generation: worker.generation,
                        WorkerEvent(timeMs: Self.nowMs(), state: info.state, reason: "\(operation.rawValue) by request"))
        }
        return try details(name)
    }

    private func heartbeatState(_ client: WorkerClient, device: String) async -> String? {
        struct Status: Decodable { var state: String }
        guard let response = try? await client.call(.device, device: device, body: #"{"op":"status"}"#, timeout: .seconds(1)),
              let text = response.deviceResult,
              let status = try? JSONDecoder().decode(Status.self, from: Data(text.utf8)) else { return nil }
        return status.state
    }

    // MARK: loading at init

    private func load(_ name: String) async throws(ManagementError) {
        let dir = try stateDirectory.vmPath(name)
        guard let definitionBytes = try StateDirectory.read(dir + "/" + StateDirectory.definitionFile),
              let configBytes = try StateDirectory.read(dir + "/" + StateDirectory.configFile) else {
            throw .host("'\(dir)' lacks \(StateDirectory.definitionFile) or \(StateDirectory.configFile)")
        }
        var definition: VMDefinition
        do { definition = try JSONDecoder().decode(VMDefinition.self, from: Data(definitionBytes)) } catch {
            throw .host("'\(dir)/\(StateDirectory.definitionFile)' does not decode: \(error)")
        }
        definition.config = String(decoding: configBytes, as: UTF8.self)
        definition.name = name
        if definition.restartPolicy == nil { definition.restartPolicy = RestartPolicy() }
        let facts = try ConfigFacts.read(definition.config, file: dir + "/" + StateDirectory.configFile, baseDirectory: definition.directory)
        vms[name] = ManagedVM(definition: definition, facts: facts, state: .off)

        let runDir = dir + "/" + StateDirectory.runDirectory
        if let pidBytes = try? StateDirectory.read(runDir + "/" + WorkerControl.pidFileName, limit: 64),
           let pid = pid_t(String(decoding: pidBytes.filter { $0 != 0x0A && $0 != 0x20 }, as: UTF8.self)), pid > 0,
           let pidfd = ExitWatcher.openPidfd(pid) {
            let client = WorkerClient(socketPath: runDir + "/" + WorkerControl.socketName, name: name)
            do {
                let response = try await client.call(.hello, timeout: .seconds(3))
                try verify(response.hello, name: name, expectedPID: pid, expectedName: facts.name)
                let generation = nextGeneration
                nextGeneration += 1
                vms[name]?.worker = LiveWorker(pid: pid, generation: generation, client: client, isChild: false)
                vms[name]?.state = .starting
                watchExit(name, generation: generation, pid: pid, pidfd: pidfd)
                try await attach(name, generation: generation)
                if let state = vms[name]?.worker?.info?.state {
                    workerEvent(name, generation: generation, WorkerEvent(timeMs: Self.nowMs(), state: state, reason: "re-attached"))
                }
                log(name).info("re-attached to a running worker", metadata: ["pid": "\(pid)"])
                return
            } catch {
                close(pidfd)
                log(name).notice("a worker pid file names a process that is not this VM's worker", metadata: ["pid": "\(pid)", "error": "\(error)"])
            }
        }
        // No live worker: its exit record (if any) says how the last one ended.
        var record: WorkerExitRecord?
        if let bytes = try? StateDirectory.read(runDir + "/" + WorkerControl.exitRecordName, limit: 1 << 20) {
            record = try? JSONDecoder().decode(WorkerExitRecord.self, from: Data(bytes))
        }
        let leftoverPidFile = (try? StateDirectory.read(runDir + "/" + WorkerControl.pidFileName, limit: 64)) != nil
        if record != nil || leftoverPidFile {
            let outcome = Self.outcome(record: record, termination: nil, requested: false)
            vms[name]?.state = outcome.state
            vms[name]?.lastExit = outcome.state == .failed ? outcome.record : record
            unlink(runDir + "/" + WorkerControl.pidFileName)
            unlink(runDir + "/" + WorkerControl.socketName)
        }
    }

    // MARK: staging and validation

    /// Runs `<worker> check` on the config in a child: its one-line error becomes the field error.
    private func check(_ config: String, directory: String) async throws(ManagementError) {
        nextStagingID += 1
        let base = stateDirectory.stagingPath + "/define-\(getpid())-\(nextStagingID)"
        let configPath = base + ".toml", logPath = base + ".log"
        defer {
            unlink(configPath)
            unlink(logPath)
        }
        try StateDirectory.writeAtomically(configPath, Array(config.utf8))
        var arguments = ["check", configPath, "--base-directory", directory]
        for path in pluginSearchPaths { arguments += ["--plugin-path", path] }
        let pid: pid_t
        do {
            pid = try ProcessSpawner.spawn(workerExecutable, arguments, workingDirectory: stateDirectory.stagingPath,
                                           outputFile: logPath, newSession: false)
        } catch {
            throw .host("cannot run '\(workerExecutable) check': \(error.description)")
        }
        guard let pidfd = ExitWatcher.openPidfd(pid) else {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw .host("cannot watch '\(workerExecutable) check' (pidfd_open: \(StateDirectory.errnoText()))")
        }
        let timer = Task {
            try? await Task.sleep(for: Self.checkTimeout)
            if !Task.isCancelled { kill(pid, SIGKILL) }
        }
        let termination = await ExitWatcher.shared.waitForExit(pid: pid, pidfd: pidfd)
        timer.cancel()
        if termination == .exited(0) { return }
        let output = String(decoding: (try? StateDirectory.read(logPath, limit: 1 << 20)) ?? [], as: UTF8.self)
        let line = output.split(separator: "\n").last { $0.hasPrefix("veneer: ") }.map { String($0.dropFirst("veneer: ".count)) }
        guard let line else {
            throw .host("'\(workerExecutable) check' \(termination?.description ?? "ended") without an error line")
        }
        throw .invalid(field: "config", reason: line.replacingOccurrences(of: configPath, with: "config"))
    }

    // MARK: state and views

    private func setState(_ name: String, _ state: VMState, _ reason: String, timeMs: Int64? = nil) {
        guard vms[name] != nil else { return }
        vms[name]?.state = state
        publish(name, state, reason, timeMs: timeMs)
    }

    private func publish(_ name: String, _ state: VMState, _ reason: String, timeMs: Int64? = nil) {
        broadcaster.publish(VMEvent(timeMs: timeMs ?? Self.nowMs(), name: name, state: state, reason: reason))
    }

    private func summary(_ vm: ManagedVM) -> VMSummary {
        var uptime: Int64?
        if let worker = vm.worker, let info = worker.info, vm.state == .running || vm.state == .paused {
            uptime = info.runningMs
            if vm.state == .running, info.state == .running, let at = worker.infoAt {
                uptime = info.runningMs + Self.milliseconds(ContinuousClock.now - at)
            }
        }
        return VMSummary(name: vm.name, state: vm.state, vcpus: vm.worker?.info?.vcpus ?? vm.facts.vcpus,
                         memoryBytes: vm.worker?.info?.memoryBytes ?? vm.facts.memoryBytes, pid: vm.worker?.pid, uptimeMs: uptime)
    }

    /// The VM's details now; notFound when it was deleted while an operation awaited its worker.
    private func details(_ name: String) throws(ManagementError) -> VMDetails {
        guard let vm = vms[name] else { throw .notFound(name: name) }
        return VMDetails(summary: summary(vm), config: vm.definition.config, directory: vm.definition.directory,
                         restartPolicy: vm.policy, worker: vm.worker?.info, lastExit: vm.lastExit, restarts: vm.restarts, heartbeat: nil)
    }

    private func log(_ name: String) -> Logging.Logger {
        var logger = self.logger
        logger[metadataKey: "vm"] = "\(name)"
        return logger
    }

    private func encode(_ definition: VMDefinition) throws(ManagementError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { return Array(try encoder.encode(definition)) } catch { throw .host("cannot encode the definition: \(error)") }
    }

    static func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
