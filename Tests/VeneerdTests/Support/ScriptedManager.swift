import Foundation
import VeneerManagement
import WorkerControlProtocol

/// An in-memory VMManaging for route tests: VMs follow the Hyper-V state rules, running VMs
/// have a "kvp" and an "fcopy" device whose requests are recorded and answered from memory,
/// events and console output are fed by the test. It stands in for VMSupervisor so the HTTP
/// layer can be tested on its own; the real supervisor is tested in ManagementTests.
actor ScriptedManager: VMManaging {
    struct VM {
        var definition: VMDefinition
        var name: String
        var state: VMState
        var kvp: [String: String] = [:]
    }

    private(set) var vms: [String: VM] = [:]
    /// Every device request as (vm, device, body).
    private(set) var deviceRequests: [(vm: String, device: String, body: String)] = []
    /// Files the fcopy device was asked to copy, with the bytes at `source` when it was asked.
    private(set) var copies: [(source: String, destination: String, bytes: [UInt8])] = []
    private var eventContinuations: [UUID: AsyncStream<VMEvent>.Continuation] = [:]
    private var consoleOutput: [UUID: AsyncStream<[UInt8]>.Continuation] = [:]
    private(set) var consoleInput: [UInt8] = []
    var consoleRing: [UInt8] = Array("boot banner\n".utf8)
    var workerMetrics: [String: WorkerMetrics] = [:]

    static let devices = [
        WorkerInfo.Device(id: "com1", plugin: "serial16550", version: "1.0", kind: "emulated"),
        WorkerInfo.Device(id: "kvp0", plugin: "kvp", version: "1.0", kind: "synthetic"),
        WorkerInfo.Device(id: "files", plugin: "fcopy", version: "1.0", kind: "synthetic"),
    ]

    func setMetrics(_ metrics: [String: WorkerMetrics]) { workerMetrics = metrics }

    private func details(_ vm: VM) -> VMDetails {
        let live = [.running, .paused, .starting].contains(vm.state)
        let worker = live
            ? WorkerInfo(name: vm.name, pid: 4242, state: vm.state == .paused ? .paused : .running, startedAtMs: 0, runningMs: 10,
                         vcpus: 1, memoryBytes: 64 << 20, overheadBytes: 1 << 20, devices: Self.devices, resets: 0)
            : nil
        return VMDetails(summary: VMSummary(name: vm.name, state: vm.state, vcpus: 1, memoryBytes: 64 << 20, pid: live ? 4242 : nil, uptimeMs: live ? 10 : nil),
                         config: vm.definition.config, directory: vm.definition.directory,
                         restartPolicy: vm.definition.restartPolicy ?? RestartPolicy(), worker: worker, lastExit: nil, restarts: 0, heartbeat: nil)
    }

    private func lookup(_ name: String) throws(ManagementError) -> VM {
        try VMName.validate(name)
        guard let vm = vms[name] else { throw .notFound(name: name) }
        return vm
    }

    private func transition(_ name: String, _ operation: String, from allowed: [VMState], to state: VMState) throws(ManagementError) -> VMDetails {
        var vm = try lookup(name)
        guard allowed.contains(vm.state) else { throw .invalidTransition(name: name, operation: operation, state: vm.state) }
        vm.state = state
        vms[name] = vm
        let event = VMEvent(timeMs: 1, name: name, state: state, reason: "\(operation) by request")
        for continuation in eventContinuations.values { continuation.yield(event) }
        return details(vm)
    }

    func define(_ definition: VMDefinition) async throws(ManagementError) -> VMDetails {
        guard let name = definition.name else { throw .invalid(field: "name", reason: "this test manager needs a name") }
        try VMName.validate(name)
        guard definition.config.contains("[machine]") else { throw .invalid(field: "config", reason: "no [machine] table") }
        guard vms[name] == nil else { throw .exists(name: name) }
        let vm = VM(definition: definition, name: name, state: .off)
        vms[name] = vm
        return details(vm)
    }

    func list() async -> [VMSummary] { vms.keys.sorted().compactMap { vms[$0].map { details($0).summary } } }
    func info(_ name: String) async throws(ManagementError) -> VMDetails { details(try lookup(name)) }
    func start(_ name: String) async throws(ManagementError) -> VMDetails { try transition(name, "start", from: [.off, .failed], to: .running) }
    func stop(_ name: String) async throws(ManagementError) -> VMDetails { try transition(name, "stop", from: [.running, .paused, .starting], to: .off) }
    func shutdown(_ name: String, force: Bool, reason: String?) async throws(ManagementError) -> VMDetails {
        try transition(name, "shutdown", from: [.running], to: .stopping)
    }
    func reset(_ name: String) async throws(ManagementError) -> VMDetails { try transition(name, "reset", from: [.running, .paused], to: .running) }
    func pause(_ name: String) async throws(ManagementError) -> VMDetails { try transition(name, "pause", from: [.running], to: .paused) }
    func resume(_ name: String) async throws(ManagementError) -> VMDetails { try transition(name, "resume", from: [.paused], to: .running) }

    func delete(_ name: String) async throws(ManagementError) {
        let vm = try lookup(name)
        guard [.off, .failed].contains(vm.state) else { throw .invalidTransition(name: name, operation: "delete", state: vm.state) }
        vms[name] = nil
    }

    func deviceRequest(_ name: String, device: String, body: String) async throws(ManagementError) -> String {
        var vm = try lookup(name)
        guard [.running, .paused].contains(vm.state) else { throw .invalidTransition(name: name, operation: "device request", state: vm.state) }
        guard Self.devices.contains(where: { $0.id == device }) else { throw .noDevice(name: name, device: device) }
        deviceRequests.append((name, device, body))
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any], let op = object["op"] as? String else {
            throw .worker(WorkerError(.invalid, "not a request object"))
        }
        switch (device, op) {
        case ("kvp0", "set"):
            vm.kvp[object["key"] as? String ?? ""] = object["value"] as? String ?? ""
            vms[name] = vm
            return "{}"
        case ("kvp0", "get"):
            guard let value = vm.kvp[object["key"] as? String ?? ""] else { throw .worker(WorkerError(.notFound, "no such key")) }
            return String(decoding: try! JSONEncoder().encode(["value": value]), as: UTF8.self)
        case ("kvp0", "delete"):
            vm.kvp[object["key"] as? String ?? ""] = nil
            vms[name] = vm
            return "{}"
        case ("kvp0", "list"):
            let items = vm.kvp.keys.sorted().map { ["key": $0, "value": vm.kvp[$0] ?? ""] }
            return String(decoding: try! JSONEncoder().encode(["items": items]), as: UTF8.self)
        case ("files", "copy"):
            let source = object["source"] as? String ?? ""
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: source))).map { [UInt8]($0) } ?? []
            copies.append((source, object["destination"] as? String ?? "", bytes))
            return "{\"bytes\":\(bytes.count)}"
        case (_, "slow"):
            throw .worker(WorkerError(.timeout, "the device did not answer in time"))
        case (_, "defrag"):
            // An op the device knows of but does not implement: 501 by the control contract.
            throw .worker(WorkerError(.unsupported, "device \(device) does not support \(op)"))
        default:
            // An op the device has never heard of is a malformed request (400), so the fuzz run's
            // no-5xx check holds for generated ops.
            throw .worker(WorkerError(.invalid, "device \(device) has no op \(op)"))
        }
    }

    func metrics() async -> [String: WorkerMetrics] { workerMetrics }

    func events() async -> AsyncStream<VMEvent> {
        let (stream, continuation) = AsyncStream<VMEvent>.makeStream()
        let id = UUID()
        eventContinuations[id] = continuation
        return stream
    }

    var eventSubscribers: Int { eventContinuations.count }

    func console(_ name: String) async throws(ManagementError) -> ConsoleAttachment {
        let vm = try lookup(name)
        guard [.running, .paused].contains(vm.state) else { throw .invalidTransition(name: name, operation: "console", state: vm.state) }
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
        continuation.yield(consoleRing)
        let id = UUID()
        consoleOutput[id] = continuation
        return ConsoleAttachment(output: stream, send: { bytes in await self.receiveConsoleInput(bytes) },
                                 close: { await self.detach(id) })
    }

    private func receiveConsoleInput(_ bytes: [UInt8]) {
        consoleInput += bytes
        // Echo, as a serial console with a shell would.
        for continuation in consoleOutput.values { continuation.yield(bytes) }
    }

    private func detach(_ id: UUID) {
        consoleOutput[id]?.finish()
        consoleOutput[id] = nil
    }

    var consoleAttachments: Int { consoleOutput.count }
}
