import Testing
import VeneerHost

/// An enlightened guest talking to the echo VSP the way Linux's hv_vmbus does: Hyper-V CPUID,
/// synthetic MSRs, hypercall page, SynIC with SINT2, version negotiation, offers, a GPADL, an open
/// channel, 10 000 verified packets through both rings, close, teardown and unload.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct VMBusEchoGuestTests {
    @Test func tenThousandPacketsEchoedAndVerified() throws {
        let r = try VeneerProcess.veneer(["run", "examples/vmbus-echo.toml"], timeout: 120)
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        #expect(r.stdout.contains("vmbus-echo: 10000 packets echoed and verified"))
        #expect(r.stdout.contains("signalling the closed channel -> 0x12"))
        #expect(r.stdout.contains("UNLOAD_RESPONSE"))
    }

    @Test func aVMBusDeviceNeedsAnEnlightenedVM() throws {
        let config = try VeneerProcess.config("""
            hyperv = false
            [boot]
            image = "{root}/examples/guests/build/hello.bin"
            mode = "real"
            [[device]]
            plugin = "vmbus-echo"
            """)
        let r = try VeneerProcess.veneer(["run", config])
        #expect(r.status == SetupExitStatus.badConfig)
        #expect(r.stderr.contains("hyperv: device 'vmbus-echo-0' is a VMBus device, which needs hyperv = true"), "\(r.stderr)")
    }
}
