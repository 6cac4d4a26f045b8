import Testing
import VeneerHost

/// The vss plugin on the real host with a guest that plays Linux's side as far as the plugin goes
/// by itself (examples/guests/vmbus-echo built with -DVSSGUEST): negotiation with Linux's version
/// list, and GET_DM_INFO answered as hv_snapshot.c does. The fcopy guest waits for a copy, which
/// a management request starts: ICWorkerTests.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct VSSFileCopyGuestTests {
    static func run(_ name: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try VeneerProcess.buildExamples()
        let config = try VeneerProcess.config("""
            name = "\(name)"
            memory = "64M"
            hyperv = true
            [boot]
            format = "flat"
            image = "{root}/examples/guests/build/vmbus-\(name).bin"
            mode = "long"
            load_address = 0x100000
            [[device]]
            plugin = "serial16550"
            [[device]]
            plugin = "debug-exit"
            [[device]]
            plugin = "\(name)"
            """)
        let r = try VeneerProcess.veneer(["run", config, "--log-level", "info"], timeout: 180)
        return (r.status, r.stdout, r.stderr)
    }

    @Test func vssNegotiates50AndTheGuestAnswersGetDMInfo() throws {
        let r = try Self.run("vss")
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        #expect(r.stdout.contains("vmbus-vss: negotiate: 48 bytes, host offers framework 1.0 3.0, VSS 5.0"), "\(r.stdout)")
        #expect(r.stdout.contains("vmbus-vss: vss: GET_DM_INFO answered, flags 0"), "\(r.stdout)")
        #expect(r.stderr.contains("VSS IC: negotiated framework 3.0, VSS 5.0"), "\(r.stderr)")
        #expect(r.stderr.contains("VSS: the guest answers (GET_DM_INFO flags 0x0)"), "\(r.stderr)")
    }
}
