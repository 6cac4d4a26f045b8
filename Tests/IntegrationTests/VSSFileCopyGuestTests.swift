import Testing
import VeneerHost

/// The vss and fcopy plugins on the real host with guests that play Linux's side as far as the
/// plugins go by themselves (examples/guests/vmbus-echo built with -DVSSGUEST, -DFCOPYGUEST):
/// negotiation with Linux's version lists, and VSS's GET_DM_INFO answered as hv_snapshot.c does.
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

    @Test func fileCopyIsOfferedUnderTheDaemonsInstanceAndNegotiates11() throws {
        let r = try Self.run("fcopy")
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        #expect(r.stdout.contains("type 34d14be3-dee4-41c8-9ae7-6b174977c192 instance eb765408-105f-49b6-b4aa-c123b64d17d4"), "\(r.stdout)")
        #expect(r.stdout.contains("vmbus-fcopy: negotiate: answered framework 3.0, file copy 1.1"), "\(r.stdout)")
        #expect(r.stderr.contains("file copy IC: negotiated framework 3.0, file copy 1.1"), "\(r.stderr)")
    }
}
