import Foundation
import Testing
@testable import VeneerHost

/// `fwait` and `int3` at CPL0, which a software KVM (PVM) cannot emulate: the VMM completes them
/// and the guest checks the outcome (registers intact, #BP frame with the RIP after the int3).
/// On a hardware-assisted host the CPU runs them and the same checks pass with no fallback used.
@Suite(.serialized, .enabled(if: KVMSystem.isAvailable(), "SKIPPED: /dev/kvm not available"))
struct InstructionFallbackGuestTests {
    @Test func guestSeesFwaitAndInt3BehaveAsOnHardware() throws {
        let scratch = try BootTestSupport.Scratch()
        let uart = scratch.path + "/uart.txt"
        let config = try BootTestSupport.exampleConfig("insn-fallback", uartOutput: uart)
        let boot = try BootTestSupport.boot(config, uartOutput: uart)
        #expect(boot.exit == .guestExit(0), "UART:\n\(boot.uart)")
        #expect(boot.lines == [
            "insn-fallback: fwait ok",
            "insn-fallback: int3 ok",
            "insn-fallback: all checks passed",
            "",
        ])
    }

    /// The probe says what this host does with a mask: cx16 reaches the guest through
    /// KVM_SET_CPUID2 even on a software KVM, so hiding it is honoured wherever the host has it.
    @Test func cpuidProbeSortsEveryHiddenFeature() throws {
        let cx16 = try #require(CPUFeature.named("cx16"))
        let model = CPUModel(template: .x86_64_v1, disabled: [cx16])
        let report = try CPUIDProbe.run(model)
        let sorted = report.honoured + report.ignored + report.absentOnHost
        #expect(Set(sorted) == Set(model.hiddenFeatures))
        #expect(sorted.count == model.hiddenFeatures.count)
        #expect(!report.ignored.contains(cx16))
    }
}
