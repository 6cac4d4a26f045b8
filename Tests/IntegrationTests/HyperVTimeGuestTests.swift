import Testing
import VeneerHost

/// Hyper-V timekeeping checked from inside a guest (examples/guests/hv-time): the reference TSC
/// page against TIME_REF_COUNT at the start and the end of the run (the MSR always lies between
/// the page reads taken before and after it; millions of page reads at CPL3 never go back),
/// #GP for every unimplemented MSR and read-only write, and the synthetic timers in message and
/// direct mode, never early.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct HyperVTimeGuestTests {
    @Test func referenceTimeMSRProbesAndSyntheticTimers() throws {
        let r = try VeneerProcess.veneer(["run", "examples/hv-time.toml", "--log-level", "debug"], timeout: 300)
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        for line in [
            "hv-time: cpuid: Hyper-V 10.0 build 20348, synthetic timers with direct mode offered",
            "hv-time: tsc-page: start: 20000 page/MSR/page reads",
            "hv-time: tsc-page: start: 4000000 reads at CPL3",
            "hv-time: tsc-page: end: 20000 page/MSR/page reads",
            "hv-time: tsc-page: end: 4000000 reads at CPL3",
            "each a #GP",
            "hv-time: stimer: one-shot message mode",
            "hv-time: stimer: periodic message mode: 10 ticks on a 1 ms grid, stopped by count 0",
            "hv-time: stimer: direct mode: one-shot on vector 0xed",
            "hv-time: all checks passed",
        ] {
            #expect(r.stdout.contains(line), "missing \"\(line)\" in:\n\(r.stdout)")
        }
        // Refused MSR accesses are logged at debug level, KVM's own MSRs included.
        #expect(r.stderr.contains("[msr] VP 0: rdmsr 0x4b564d00 refused (#GP)"), "\(r.stderr)")
        #expect(r.stderr.contains("[msr] VP 0: wrmsr 0x40000020 <- 0x0 refused (#GP)"), "\(r.stderr)")
    }
}
