import CKVM
import Synchronization

/// Instructions the VMM completes itself when the host's KVM reports that it cannot emulate them.
///
/// A software KVM that interprets guest CPL0 code (PVM) lacks a few instructions; KVM then exits
/// with an emulation failure carrying the instruction bytes. Hardware-assisted KVM never exits
/// for these, so this table only ever runs on such hosts. Each entry does what the CPU would:
/// - `fwait`/`wait` (9B) checks for pending unmasked x87 exceptions. A guest kernel that reaches
///   it at CPL0 has none outstanding the VMM could deliver (KVM keeps no x87 exception state for
///   us to see), so it completes as the no-op it is in that case.
/// - `int3` (CC) raises #BP as a trap: the guest's handler sees the RIP after the instruction.
public enum InstructionFallback: String, Sendable, CaseIterable {
    case fwait
    case int3

    /// The instruction a failure's bytes begin with, if the VMM can complete it.
    public static func recognise(_ bytes: ArraySlice<UInt8>) -> InstructionFallback? {
        switch bytes.first {
        case 0x9B: .fwait
        case 0xCC: .int3
        default: nil
        }
    }

    /// Encoded length: neither instruction takes prefixes or operands.
    public var length: UInt64 { 1 }

    /// The exception the instruction raises after completing, if any.
    var trapVector: UInt8? {
        switch self {
        case .fwait: nil
        case .int3: 3
        }
    }

    /// The instruction bytes of an emulation-failure exit, or nil when KVM gave none. The length
    /// comes from the kernel; it is bounded anyway by the 15-byte field it describes.
    static func instructionBytes(_ run: UnsafeMutablePointer<kvm_run>) -> ArraySlice<UInt8>? {
        let failure = run.pointee.emulation_failure
        guard failure.flags & UInt64(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) != 0,
              failure.ndata >= 3 else { return nil }
        let count = min(Int(failure.insn_size), 15)
        return withUnsafeBytes(of: failure.insn_bytes) { ArraySlice($0.prefix(count)) }
    }

    /// Completes the instruction on `cpu`: moves RIP past it, drops the #UD KVM may have queued
    /// with the failure, and raises the instruction's own trap.
    func complete(on cpu: VCPUFD) throws(KVMError) {
        var regs = try cpu.registers()
        regs.rip &+= length
        try cpu.setRegisters(regs)
        var events = try cpu.events()
        let queuedUD = (events.exception.injected != 0 || events.exception.pending != 0) && events.exception.nr == 6
        if queuedUD {
            events.exception.injected = 0
            events.exception.pending = 0
        }
        if let vector = trapVector {
            events.exception.injected = 1
            events.exception.nr = vector
            events.exception.has_error_code = 0
            events.exception.error_code = 0
        }
        if queuedUD || trapVector != nil { try cpu.setEvents(events) }
    }
}

/// How often each fallback ran in one VM, shared by its vCPUs. The first use of each instruction
/// is logged, so a user learns the host lacks it without a line per occurrence.
public final class InstructionFallbackCounters: Sendable {
    private let counts = Mutex([InstructionFallback: UInt64]())
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func record(_ instruction: InstructionFallback, vcpu: UInt32) {
        let first = counts.withLock { counts in
            counts[instruction, default: 0] += 1
            return counts[instruction] == 1
        }
        if first {
            logger.log(.warning, "vcpu\(vcpu)",
                       "this host's KVM cannot emulate `\(instruction.rawValue)`: Veneer completes it (logged once; counted)")
        }
    }

    /// The counts so far, in table order, without the instructions never seen.
    public var snapshot: [(InstructionFallback, UInt64)] {
        counts.withLock { counts in InstructionFallback.allCases.compactMap { i in counts[i].map { (i, $0) } } }
    }
}
