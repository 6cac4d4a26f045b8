import Testing
import VeneerHost

/// The SynIC from inside a 2-vCPU guest (examples/guests/hv-synic) through the hv-testdev
/// plugin's Hyper-V connections: a message burst queued behind the slot and released by EOM,
/// messages and event flags from one VP to the other in both directions, an event route, the
/// refusals, and a queue filled to its limit.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct HyperVSynICGuestTests {
    @Test func queueingEOMAndCrossVPPathsFromAGuest() throws {
        let r = try VeneerProcess.veneer(["run", "examples/hv-synic.toml"], timeout: 180)
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        for line in [
            "hv-synic: self-post: 5 messages in order through one slot, 4 EOMs",
            "hv-synic: cross-vp-post: VP 0 -> VP 1: 40 messages in order",
            "hv-synic: cross-vp-event: flag 300 set on VP 1's SINT5",
            "hv-synic: event-route: VP 1's HvSignalEvent flags 17 and 2047 set on VP 0's SINT5",
            "hv-synic: reverse-post: VP 1 -> VP 0: 3 messages in order",
            "hv-synic: errors: bad VP, command, connection ids and flag number refused",
            "hv-synic: queue-full: 257 messages held (slot + 256 queued), then HV_STATUS_INSUFFICIENT_BUFFERS",
            "hv-synic: all checks passed",
        ] {
            #expect(r.stdout.contains(line), "missing \"\(line)\" in:\n\(r.stdout)")
        }
        #expect(!r.stderr.contains("warning"), "a refused device post is the device's to report: \(r.stderr)")
    }

    @Test func aDeviceConnectionNeedsAnEnlightenedVM() throws {
        let config = try VeneerProcess.config("""
            hyperv = false
            [boot]
            image = "{root}/examples/guests/build/hello.bin"
            mode = "real"
            [[device]]
            plugin = "hv-testdev"
            """)
        let r = try VeneerProcess.veneer(["run", config])
        #expect(r.status == SetupExitStatus.badConfig)
        #expect(r.stderr.contains("hv-testdev"), "\(r.stderr)")
    }
}
