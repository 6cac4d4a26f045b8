import CKVM
import Testing
@testable import VeneerHost

struct InstructionFallbackTests {
    @Test func recognisesOnlyTheInstructionsItCanComplete() {
        #expect(InstructionFallback.recognise([0x9B]) == .fwait)
        #expect(InstructionFallback.recognise([0x9B, 0xDB, 0xE3]) == .fwait, "fwait; fninit: only the fwait is completed")
        #expect(InstructionFallback.recognise([0xCC, 0x90]) == .int3)
        #expect(InstructionFallback.recognise([0xF3, 0x48, 0x0F, 0xB8, 0xC7]) == nil, "popcnt stays fatal")
        #expect(InstructionFallback.recognise([0xCD, 0x03]) == nil, "int 3 (two bytes) is not int3")
        #expect(InstructionFallback.recognise([]) == nil)
        #expect(InstructionFallback.int3.trapVector == 3)
        #expect(InstructionFallback.fwait.trapVector == nil)
    }

    /// The bytes come from KVM's exit; their length is bounded by the field they sit in, and a
    /// failure without the bytes flag gives none.
    @Test func instructionBytesAreBoundedAndFlagged() {
        let run = UnsafeMutablePointer<kvm_run>.allocate(capacity: 1)
        defer { run.deallocate() }
        run.initialize(to: kvm_run())
        run.pointee.emulation_failure.ndata = 3
        run.pointee.emulation_failure.insn_size = 200
        withUnsafeMutableBytes(of: &run.pointee.emulation_failure.insn_bytes) { $0.copyBytes(from: [UInt8](repeating: 0x9B, count: 15)) }
        #expect(InstructionFallback.instructionBytes(run) == nil, "no flag, no bytes")
        run.pointee.emulation_failure.flags = UInt64(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)
        #expect(InstructionFallback.instructionBytes(run)?.count == 15)
        run.pointee.emulation_failure.insn_size = 1
        #expect(InstructionFallback.instructionBytes(run).map(Array.init) == [0x9B])
        run.pointee.emulation_failure.ndata = 1
        #expect(InstructionFallback.instructionBytes(run) == nil, "ndata too small to hold the bytes")
    }

    @Test func countsPerInstruction() {
        let counters = InstructionFallbackCounters(logger: Logger(threshold: .error))
        counters.record(.fwait, vcpu: 0)
        counters.record(.fwait, vcpu: 1)
        counters.record(.int3, vcpu: 0)
        #expect(counters.snapshot.map { "\($0.0.rawValue) \($0.1)" } == ["fwait 2", "int3 1"])
    }
}
