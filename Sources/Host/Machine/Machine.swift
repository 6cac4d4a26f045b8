import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// One VM: assembled from a config, run until it stops. This is the worker process's whole job.
///
/// Sendable: every stored property is a `let` of a thread-safe type; management (the worker's
/// control thread) reaches the running machine through the methods in Machine+Management.swift.
public final class Machine: @unchecked Sendable {
    public let config: VMConfig
    let services: MachineServices
    let vm: VirtualMachineFD
    let devices: [PluginDevice]
    /// Each device's host binding, in `devices` order (metrics, management requests).
    let contexts: [DeviceContext]
    let vcpus: [VCPUFD]
    /// Closed while the VM is paused.
    let gate: VCPUGate
    /// Exits by reason, one per vCPU, in vCPU order.
    public let exitCounters: [ExitCounters]
    /// Instructions this host's KVM could not emulate that the VMM completed, per instruction.
    public let fallbacks: InstructionFallbackCounters

    public var memory: GuestMemory { services.memory }

    /// Builds everything and loads the guest; the VM does not run until `run()`.
    public init(config: VMConfig, registry: PluginRegistry = .standard(), logger: Logger = Logger()) throws(MachineError) {
        self.config = config
        fallbacks = InstructionFallbackCounters(logger: logger)
        let resolved = try DeviceResolver.resolve(config, registry: registry)
        do {
            let kvm = try KVMSystem()
            vm = try kvm.createVM()
            try vm.setIdentityMapAddress(MemoryMap.kvmIdentityMapAddress)
            try vm.setTSSAddress(MemoryMap.kvmTSSAddress)
            try vm.createIRQChip()

            let map: MemoryMap
            do { map = try MemoryMap.pc(ramBytes: config.memoryBytes) } catch {
                throw MachineError.config(ConfigError(file: config.file, key: "memory", reason: error.description))
            }
            let memory: GuestMemory
            do { memory = try GuestMemory(map: map) } catch { throw MachineError.memory(error.description) }
            for (slot, backing) in memory.backings.enumerated() {
                try vm.setMemoryRegion(slot: UInt32(slot), guestAddress: backing.region.start, size: backing.region.size,
                                       host: backing.host, readOnly: backing.region.kind == .rom)
            }

            let stop: StopController
            let events: EventLoop
            do {
                stop = try StopController()
                events = try EventLoop(stop: stop)
                gate = try VCPUGate()
            } catch { throw MachineError.system(error) }

            // vCPUs first: the Hyper-V partition needs the TSC frequency, and devices offering
            // VMBus channels need the partition when they are created.
            let enlightened = config.hyperv ?? resolved.contains { $0.library.info.kind == .synthetic }
            if let synthetic = resolved.first(where: { $0.library.info.kind == .synthetic }), !enlightened {
                throw MachineError.config(ConfigError(file: config.file, key: "hyperv",
                    reason: "device '\(synthetic.config.id)' is a VMBus device, which needs hyperv = true"))
            }
            var cpuid = config.cpu.apply(to: try kvm.supportedCPUID())
            var features = HyperVFeatures.host()
            // A CPU model that hides invtsc hides Hyper-V's invariant-TSC control with it, so the
            // two CPUID views never disagree.
            if let invtsc = CPUFeature.named("invtsc"), config.cpu.hiddenFeatures.contains(invtsc) {
                features.invariantTSC = false
            }
            if enlightened {
                cpuid = HyperVCPUID.apply(to: cpuid, vcpuCount: config.vcpus, features: features)
                try HyperVPartition.configure(vm)
            }
            var vcpus: [VCPUFD] = []
            for index in 0..<config.vcpus {
                let cpu = try vm.createVCPU(index: index)
                try cpu.setCPUID(Self.cpuid(cpuid, apicID: index))
                vcpus.append(cpu)
            }
            self.vcpus = vcpus
            exitCounters = vcpus.map { _ in ExitCounters() }

            let interrupts = InterruptController(vm: vm)
            let ports = PortIOBus()
            var hyperv: HyperVPartition?
            if enlightened, let first = vcpus.first {
                ports.reserve(HyperVInterface.reservedPorts, owner: "the Hyper-V hypercall interface")
                let tscOffset = try GuestTSCOffset.measure(first)
                let tscHz = try first.tscFrequency()
                hyperv = try HyperVPartition(vm: vm, vpCount: config.vcpus, tscHz: tscHz,
                                             estimatedGuestTSC: { ckvm_rdtsc() &+ UInt64(bitPattern: tscOffset) },
                                             features: features, memory: memory, interrupts: interrupts,
                                             events: events, logger: logger)
                logger.log(.debug, "hyperv", "reference time: guest TSC \(tscHz) Hz, scale \(hex(hyperv?.clock.scale.scale ?? 0)), invariant TSC \(features.invariantTSC ? "offered" : "not offered")")
            }
            services = MachineServices(vm: vm, memory: memory, ports: ports, mmio: MMIOBus(), interrupts: interrupts,
                                       events: events, stop: stop, hyperv: hyperv, logger: logger)

            var devices: [PluginDevice] = []
            var contexts: [DeviceContext] = []
            for r in resolved {
                let context = DeviceContext(id: r.config.id, machine: services)
                let device = PluginDevice(library: r.library, instanceName: r.config.id, host: context)
                context.device = device
                do {
                    try device.create(parameters: r.parameters, vcpuCount: config.vcpus)
                    // Metrics are registered during create only (ABI 1.8).
                    context.metrics.seal()
                    try device.reset()
                } catch { throw MachineError.device(error) }
                devices.append(device)
                contexts.append(context)
            }
            self.devices = devices
            self.contexts = contexts

            // Firmware tables for guests that look for them: Generation 1 PCs, enlightened guests
            // (the VMBus device lives in the DSDT) and OSes booted through a real protocol.
            var e820 = E820Map(memoryMap: memory.map)
            var rsdp: UInt64?
            let flat = if case .flat = config.boot { true } else { false }
            if config.generation == .one || enlightened || !flat {
                let firmware: FirmwareTables
                do {
                    firmware = try FirmwareTables(vcpuCount: Int(config.vcpus),
                                                  devices: PlatformDescription.acpiDevices(resolved, enlightened: enlightened))
                    try firmware.write(into: memory)
                } catch { throw MachineError.memory("firmware tables: \(error)") }
                for r in firmware.layout.memoryRanges {
                    e820.mark(r.start..<r.start + r.size, as: E820Map.Kind(rawValue: r.kind.rawValue) ?? .reserved)
                }
                rsdp = firmware.layout.rsdpAddress
            }

            let entry: BootEntry
            do { entry = try config.boot.load(into: memory, e820: e820, rsdp: rsdp) } catch { throw MachineError.boot(error) }
            // What devices that describe the machine to firmware (fw-cfg) report: the tables in
            // the relocatable form firmware loads itself, wherever its layout puts them.
            // A VM that needs no tables of its own (flat, Generation 2) must not fail over them.
            var linked: ACPILinkedTables?
            do {
                linked = try ACPILinkedTables(vcpuCount: Int(config.vcpus),
                                              devices: PlatformDescription.acpiDevices(resolved, enlightened: enlightened))
            } catch {
                logger.log(.warning, "machine", "no ACPI tables for devices that describe the machine: \(error)")
            }
            let facts = MachineFacts(vcpuCount: config.vcpus, ramBytes: memory.map.ramBytes, memoryMap: e820, boot: config.boot, acpi: linked,
                                     vmName: config.name)
            services.facts.withLock { $0 = facts }
            for cpu in vcpus {
                // vCPUs without a state stay in KVM's reset state, waiting for INIT/SIPI.
                if let state = entry.state(forVCPU: cpu.index, count: config.vcpus) {
                    try state.apply(to: cpu)
                    if cpu.index > 0 { try cpu.setMPState(UInt32(KVM_MP_STATE_RUNNABLE)) }
                }
            }
        } catch let error as MachineError {
            throw error
        } catch let error as KVMError {
            throw .kvm(error)
        } catch {
            throw .memory("\(error)")
        }
    }

    /// The host's CPUID with this vCPU's APIC id in leaves 1 and 0xB.
    static func cpuid(_ base: [kvm_cpuid_entry2], apicID: UInt32) -> [kvm_cpuid_entry2] {
        base.map { e in
            var e = e
            if e.function == 1 { e.ebx = (e.ebx & 0x00FF_FFFF) | (apicID << 24) }
            if e.function == 0xB || e.function == 0x1F { e.edx = apicID }
            return e
        }
    }

    /// Runs the VM until something stops it; returns why. `started` runs once every vCPU thread
    /// has been started (the VM is running).
    public func run(started: () -> Void = {}) -> MachineExit {
        let stop = services.stop
        do {
            try services.events.handleTerminationSignals()
        } catch {
            return .deviceError("cannot handle termination signals: \(error)")
        }
        _ = ckvm_install_kick_signal()
        let events = services.events
        let eventThread: NativeThread
        do { eventThread = try NativeThread(name: "veneer-events") { events.run() } } catch {
            return .deviceError(error.description)
        }
        defer {
            events.shutdown()
            eventThread.join()
        }
        for device in devices {
            do { try device.start() } catch { return .deviceError(error.description) }
        }
        // Management requests time out on the event loop, checked once a second.
        let expiry: OwnedFD
        do { expiry = try Self.expiryTimer() } catch { return .deviceError(error.description) }
        _ = events.watchCore(expiry) { [contexts] in
            let now = EventLoop.now()
            for context in contexts { context.controlRequests.expire(now: now) }
        }
        // A stop also lets parked (paused) vCPUs go.
        stop.addKicker { [gate] in gate.release() }
        services.vcpusRunning = true
        var threads: [NativeThread] = []
        for (cpu, exits) in zip(vcpus, exitCounters) {
            let runner = VCPURunner(cpu: cpu, ports: services.ports, mmio: services.mmio, stop: stop, hyperv: services.hyperv,
                                    fallbacks: fallbacks, logger: services.logger, gate: gate, exits: exits)
            do {
                let thread = try NativeThread(name: "veneer-vcpu\(cpu.index)") { runner.run() }
                stop.addKicker { [id = thread.id] in
                    cpu.requestImmediateExit()
                    _ = ckvm_kick_thread(UInt(id))
                }
                threads.append(thread)
            } catch {
                stop.request(.deviceError("\(error)"))
                break
            }
        }
        if !stop.isStopping { started() }
        let exit = stop.wait()
        for thread in threads { thread.join() }
        // Requests still waiting for a device are answered now: the device will not answer.
        for context in contexts { context.controlRequests.expire(now: .max) }
        let completed = fallbacks.snapshot
        if !completed.isEmpty {
            services.logger.log(.info, "machine", "instructions completed by the VMM: "
                + completed.map { "\($0.0.rawValue) \($0.1)" }.joined(separator: ", "))
        }
        services.vcpusRunning = false
        for device in devices {
            do { try device.stop() } catch { services.logger.log(.warning, device.instanceName, error.description) }
            services.events.removeAll(for: device)
        }
        return exit
    }

    /// A timerfd firing every second.
    private static func expiryTimer() throws(SystemError) -> OwnedFD {
        let raw = ckvm_timerfd()
        guard raw >= 0 else { throw SystemError("timerfd_create") }
        let fd = OwnedFD(raw)
        let second: UInt64 = 1_000_000_000
        guard ckvm_timerfd_arm(raw, EventLoop.now() &+ second, second) == 0 else { throw SystemError("timerfd_settime") }
        return fd
    }

    deinit {
        for device in devices { device.destroy() }
    }
}
