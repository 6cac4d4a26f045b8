import CKVM
import VeneerPluginABI
import WorkerControlProtocol
#if canImport(Glibc)
import Glibc
#endif

/// What the worker's control side asks of a running machine: pause and resume, stop and reset,
/// device management requests, metrics. Callable from any thread once `run` has called `started`.
extension Machine {
    /// How long a device has to answer a management request (ABI 1.8).
    public static let deviceRequestTimeoutNs: UInt64 = 30_000_000_000
    /// How long a pause may wait for every vCPU to leave the guest, and for the event thread.
    static let pauseTimeoutNs: UInt64 = 10_000_000_000

    public var vcpuCount: Int { vcpus.count }

    /// The device instances, in config order.
    public var deviceInfo: [WorkerInfo.Device] {
        devices.map { WorkerInfo.Device(id: $0.instanceName, plugin: $0.info.name, version: $0.info.version, kind: $0.info.kind.rawValue) }
    }

    /// Ends `run` with `exit` (a stop or reset by request). Any thread.
    public func requestStop(_ exit: MachineExit) { services.stop.request(exit) }

    public var isStopping: Bool { services.stop.isStopping }

    /// Every vCPU leaves KVM_RUN and stays out; then, on the event thread, device timers freeze
    /// and devices hear `run_state` paused. Returns once all of that is done.
    public func pause() throws(WorkerError) {
        gate.close()
        services.stop.kickAll()
        guard gate.waitUntilParked(vcpus.count, stop: services.stop, timeoutNs: Self.pauseTimeoutNs) else {
            gate.open()
            throw WorkerError(.failed, services.stop.isStopping ? "the VM is stopping" : "the vCPUs did not leave the guest in time")
        }
        let devices = self.devices, events = services.events
        guard onEventThread({
            events.freezeTimers()
            for d in devices { d.runStateChanged(UInt32(VENEER_RUN_PAUSED)) }
        }) else {
            throw WorkerError(.failed, "the event thread did not freeze device timers in time")
        }
    }

    /// Device timers run again from where they stopped, devices hear `run_state` resumed, then
    /// the vCPUs go back into the guest.
    public func resume() throws(WorkerError) {
        let devices = self.devices, events = services.events
        let done = onEventThread {
            events.thawTimers()
            for d in devices { d.runStateChanged(UInt32(VENEER_RUN_RESUMED)) }
        }
        gate.open()
        guard done else { throw WorkerError(.failed, "the event thread did not restart device timers in time") }
    }

    /// Runs `body` on the event thread and waits for it (bounded); false when it did not run in time.
    private func onEventThread(_ body: @escaping @Sendable () -> Void) -> Bool {
        let raw = ckvm_eventfd(0)
        guard raw >= 0 else { return false }
        let done = OwnedFD(raw)
        services.events.enqueue {
            body()
            var one: UInt64 = 1
            _ = Glibc.write(done.raw, &one, 8)
        }
        var entry = pollfd(fd: done.raw, events: Int16(POLLIN), revents: 0)
        let deadline = EventLoop.now() &+ Self.pauseTimeoutNs
        while EventLoop.now() < deadline {
            let n = poll(&entry, 1, 100)
            if n > 0 { return true }
        }
        return false
    }

    /// The ids of the devices whose plugin is `plugin`.
    public func devices(usingPlugin plugin: String) -> [String] {
        devices.filter { $0.info.name == plugin }.map(\.instanceName)
    }

    /// Sends management request `json` (a JSON object text) to device `id`; `completion` runs
    /// once, on whichever thread the answer comes from, with the device's JSON result or why not.
    public func deviceRequest(_ id: String, json: String, completion: @escaping @Sendable (Result<String, WorkerError>) -> Void) {
        guard let index = devices.firstIndex(where: { $0.instanceName == id }) else {
            return completion(.failure(WorkerError(.notFound, "no device '\(id)' in this VM")))
        }
        let device = devices[index], table = contexts[index].controlRequests, stop = services.stop
        let plugin = device.info.name
        let deadline = EventLoop.now() &+ Self.deviceRequestTimeoutNs
        let request = table.begin(deadline: deadline) { answer in
            completion(Self.outcome(answer, device: id, timedOut: EventLoop.now() >= deadline, stopping: stop.isStopping))
        }
        services.events.enqueue {
            if !device.control(request: request, json: json) {
                _ = table.answer(request, status: .unsupported, text: "device '\(id)' (plugin \(plugin)) takes no management requests")
            }
        }
    }

    /// A device's answer as the control protocol reports it.
    static func outcome(_ answer: ControlRequestTable.Answer, device: String, timedOut: Bool, stopping: Bool) -> Result<String, WorkerError> {
        switch answer.status {
        case .ok: return .success(answer.text)
        case .invalid: return .failure(WorkerError(.invalid, "device '\(device)': \(answer.text)"))
        case .unsupported: return .failure(WorkerError(.unsupported, answer.text))
        case .again where timedOut: return .failure(WorkerError(.timeout, "device '\(device)' did not answer within 30 s"))
        case .again where stopping: return .failure(WorkerError(.conflict, "device '\(device)': the VM stopped before it answered"))
        case .again: return .failure(WorkerError(.conflict, "device '\(device)': \(answer.text)"))
        default: return .failure(WorkerError(.failed, "device '\(device)': \(answer.text)"))
        }
    }

    /// Exit counters per vCPU, VMBus traffic and every device's published metrics.
    public func metrics() -> WorkerMetrics {
        let vcpus = exitCounters.enumerated().map { WorkerMetrics.VCPU(index: $0.offset, exits: $0.element.snapshot()) }
        let vmbus = services.hyperv?.vmbus.traffic.snapshot() ?? [:]
        var devices: [String: [WorkerMetrics.Metric]] = [:]
        for (device, context) in zip(self.devices, contexts) {
            let samples = context.metrics.samples()
            guard !samples.isEmpty else { continue }
            devices[device.instanceName] = samples.map {
                WorkerMetrics.Metric(kind: $0.definition.isCounter ? "counter" : "gauge", name: $0.definition.name,
                                     help: $0.definition.help, value: Double($0.value))
            }
        }
        return WorkerMetrics(vcpus: vcpus, vmbus: vmbus, devices: devices)
    }

    /// The worker's resident memory beyond the guest memory it holds resident (see `WorkerInfo`).
    public func overheadBytes() -> UInt64 {
        guard let rss = processResidentBytes() else { return 0 }
        let guest = memory.residentBytes()
        return rss > guest ? rss - guest : 0
    }
}
