import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// The run loop of one vCPU: enter the guest, dispatch the exit, repeat until the VM stops.
///
/// Unsafe-pointer invariants: the `kvm_run` page belongs to this vCPU's thread while the loop runs;
/// port-I/O data lives at `io.data_offset` inside that page and spans `count * size` bytes, both
/// chosen by the kernel, never by the guest.
final class VCPURunner: @unchecked Sendable {
    let cpu: VCPUFD
    let ports: PortIOBus
    let mmio: MMIOBus
    let stop: StopController
    /// The Hyper-V interface when the VM is enlightened: its MSRs and hypercall ports.
    let hyperv: HyperVPartition?
    let fallbacks: InstructionFallbackCounters
    let logger: Logger
    /// Closed while the VM is paused: the vCPU waits there, out of KVM_RUN.
    let gate: VCPUGate
    /// This vCPU's exits by reason (written only here).
    let exits: ExitCounters
    /// The last state-report generation this vCPU answered (see `StopController.requestStateReport`).
    private var reportedGeneration: UInt64 = 0

    init(cpu: VCPUFD, ports: PortIOBus, mmio: MMIOBus, stop: StopController, hyperv: HyperVPartition?,
         fallbacks: InstructionFallbackCounters, logger: Logger, gate: VCPUGate, exits: ExitCounters) {
        self.cpu = cpu
        self.gate = gate
        self.exits = exits
        self.logger = logger
        self.fallbacks = fallbacks
        self.ports = ports
        self.mmio = mmio
        self.stop = stop
        self.hyperv = hyperv
        // Hypercalls read RCX/RDX/R8 and write RAX: with the registers in kvm_run they cost no ioctl.
        cpu.syncRegistersOnExit(hyperv != nil)
    }

    /// The hypercall page's two exits (see `HypercallPage`). Anything else on these ports (a
    /// guest poking them directly) gets the same treatment: the registers decide, and they are the
    /// guest's own.
    @inline(never)
    private func hypervPort(_ run: UnsafeMutablePointer<kvm_run>, _ page: UnsafeMutableRawPointer) {
        guard let hyperv else { return }
        let io = run.pointee.io
        if io.direction == KVM_EXIT_IO_IN {
            (page + Int(io.data_offset)).initializeMemory(as: UInt8.self, repeating: 0xFF, count: Int(io.size) * Int(io.count))
            return
        }
        if io.port == HyperVInterface.hypercallPort {
            let r = run.pointee.s.regs.regs
            run.pointee.s.regs.regs.rax = hyperv.hypercall(vp: cpu.index, control: r.rcx, input: r.rdx, output: r.r8)
        } else {
            let data = (page + Int(io.data_offset)).loadUnaligned(as: UInt32.self)
            let flag = UInt16(truncatingIfNeeded: run.pointee.s.regs.regs.rdx >> 32)   // the page keeps RDX's high half
            run.pointee.s.regs.regs.rcx = io.size == 4 ? hyperv.unmatchedSignal(vp: cpu.index, connectionID: data, flagNumber: flag) : 5
        }
        cpu.markRegistersDirty()
    }

    /// KVM could not emulate an instruction: complete it if it is one the VMM knows, else stop
    /// the VM showing the bytes.
    @inline(never)
    private func emulationFailure(_ run: UnsafeMutablePointer<kvm_run>) {
        let bytes = InstructionFallback.instructionBytes(run)
        if let bytes, let instruction = InstructionFallback.recognise(bytes) {
            do {
                try instruction.complete(on: cpu)
                fallbacks.record(instruction, vcpu: cpu.index)
            } catch {
                stop.request(.fault(VCPUFault.capture(cpu, reason: "cannot complete `\(instruction.rawValue)` for the guest: \(error)").report))
            }
            return
        }
        let shown = bytes.map { " on bytes " + $0.map { hexByte($0) }.joined(separator: " ") } ?? " (KVM gave no instruction bytes)"
        stop.request(.fault(VCPUFault.capture(cpu, reason: "KVM internal error: instruction emulation failed\(shown) (KVM_EXIT_INTERNAL_ERROR)").report))
    }

    /// Logs this vCPU's registers once per state-report request (SIGUSR1).
    private func reportStateIfAsked() {
        let generation = stop.stateReportGeneration
        guard generation != reportedGeneration else { return }
        reportedGeneration = generation
        logger.log(.warning, "vcpu\(cpu.index)", VCPUFault.capture(cpu, reason: "state on request (SIGUSR1)").report)
    }

    private func hexByte(_ b: UInt8) -> String {
        let s = String(b, radix: 16)
        return s.count == 1 ? "0" + s : s
    }

    func run() {
        guard ckvm_unblock_kick_signal() == 0 else {
            stop.request(.fault("vCPU \(cpu.index): cannot unblock the kick signal: \(SystemError("pthread_sigmask"))"))
            return
        }
        let run = cpu.run
        let page = UnsafeMutableRawPointer(run)
        while !stop.isStopping {
            if gate.isClosed {
                gate.park(unless: stop)
                continue
            }
            let error = cpu.enter()
            if error != 0 {
                if error == EINTR || error == EAGAIN {
                    exits.record(.intr)
                    run.pointee.immediate_exit = 0
                    reportStateIfAsked()
                    continue
                }
                stop.request(.fault(VCPUFault.capture(cpu, reason: "KVM_RUN failed: \(SystemError("KVM_RUN", errno: error))").report))
                return
            }
            switch Int32(run.pointee.exit_reason) {
            case KVM_EXIT_IO where hyperv != nil && (run.pointee.io.port == HyperVInterface.hypercallPort
                                                     || run.pointee.io.port == HyperVInterface.signalPort):
                exits.record(.hypercall)
                hypervPort(run, page)
            case KVM_EXIT_IO:
                exits.record(.io)
                let io = run.pointee.io
                let size = UInt32(io.size)
                let isWrite = io.direction == KVM_EXIT_IO_OUT
                var at = page + Int(io.data_offset)
                for _ in 0..<io.count {
                    var data: UInt64 = 0
                    if isWrite {
                        switch size {
                        case 1: data = UInt64(at.load(as: UInt8.self))
                        case 2: data = UInt64(at.loadUnaligned(as: UInt16.self))
                        default: data = UInt64(at.loadUnaligned(as: UInt32.self))
                        }
                        ports.dispatch(port: io.port, size: size, isWrite: true, data: &data)
                    } else {
                        ports.dispatch(port: io.port, size: size, isWrite: false, data: &data)
                        switch size {
                        case 1: at.storeBytes(of: UInt8(truncatingIfNeeded: data), as: UInt8.self)
                        case 2: at.storeBytes(of: UInt16(truncatingIfNeeded: data), as: UInt16.self)
                        default: at.storeBytes(of: UInt32(truncatingIfNeeded: data), as: UInt32.self)
                        }
                    }
                    at += Int(size)
                }
            case KVM_EXIT_MMIO:
                exits.record(.mmio)
                let length = min(UInt32(run.pointee.mmio.len), 8)
                let address = run.pointee.mmio.phys_addr
                withUnsafeMutableBytes(of: &run.pointee.mmio.data) { bytes in
                    var data: UInt64 = 0
                    if run.pointee.mmio.is_write != 0 {
                        for i in 0..<Int(length) { data |= UInt64(bytes[i]) << (8 * UInt64(i)) }
                        mmio.dispatch(address: address, size: length, isWrite: true, data: &data)
                    } else {
                        mmio.dispatch(address: address, size: length, isWrite: false, data: &data)
                        for i in 0..<Int(length) { bytes[i] = UInt8(truncatingIfNeeded: data >> (8 * UInt64(i))) }
                    }
                }
            case KVM_EXIT_X86_RDMSR:
                exits.record(.msrRead)
                let cpu = self.cpu
                let value = hyperv?.readMSR(vp: cpu.index, run.pointee.msr.index, guestTSC: { try? cpu.msr(0x10) })
                run.pointee.msr.data = value ?? 0
                run.pointee.msr.error = value == nil ? 1 : 0    // 1: KVM injects #GP
            case KVM_EXIT_X86_WRMSR:
                exits.record(.msrWrite)
                let ok = hyperv?.writeMSR(vp: cpu.index, run.pointee.msr.index, run.pointee.msr.data) ?? false
                run.pointee.msr.error = ok ? 0 : 1
            case KVM_EXIT_INTR:
                exits.record(.intr)
                run.pointee.immediate_exit = 0
                reportStateIfAsked()
            case KVM_EXIT_HLT:
                exits.record(.hlt)
                stop.request(.fault(VCPUFault.capture(cpu, reason: "vCPU halted (KVM_EXIT_HLT) with no interrupt source").report))
            case KVM_EXIT_SHUTDOWN:
                exits.record(.shutdown)
                stop.request(.fault(VCPUFault.capture(cpu, reason: "guest triple fault (KVM_EXIT_SHUTDOWN)").report))
            case KVM_EXIT_SYSTEM_EVENT:
                exits.record(.systemEvent)
                switch Int32(run.pointee.system_event.type) {
                case KVM_SYSTEM_EVENT_SHUTDOWN: stop.request(.powerOff)
                case KVM_SYSTEM_EVENT_RESET: stop.request(.reset)
                default:
                    stop.request(.fault(VCPUFault.capture(cpu, reason: "guest system event \(run.pointee.system_event.type) (crash)").report))
                }
            case KVM_EXIT_FAIL_ENTRY:
                let code = run.pointee.fail_entry.hardware_entry_failure_reason
                stop.request(.fault(VCPUFault.capture(cpu, reason: "VM entry failed (KVM_EXIT_FAIL_ENTRY, hardware reason \(hex(code)))").report))
            case KVM_EXIT_INTERNAL_ERROR where run.pointee.internal.suberror == KVM_INTERNAL_ERROR_EMULATION:
                exits.record(.other)
                emulationFailure(run)
            case KVM_EXIT_INTERNAL_ERROR:
                let sub = run.pointee.internal.suberror
                stop.request(.fault(VCPUFault.capture(cpu, reason: "KVM internal error: suberror \(sub) (KVM_EXIT_INTERNAL_ERROR)").report))
            default:
                exits.record(.other)
                stop.request(.fault(VCPUFault.capture(cpu, reason: "unhandled exit reason \(run.pointee.exit_reason)").report))
            }
        }
    }
}
