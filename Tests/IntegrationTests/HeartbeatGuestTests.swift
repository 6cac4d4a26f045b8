import Testing
import VeneerHost

/// The heartbeat plugin on the real host with a guest that plays Linux `hv_utils`'s side
/// (examples/guests/vmbus-echo built with -DHEARTBEAT): the offer is a message-mode pipe, the
/// guest answers version negotiation and heartbeats, goes silent for three and answers again;
/// the host's log follows the guest's health.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct HeartbeatGuestTests {
    @Test func aLinuxStyleGuestNegotiatesAnswersAndIsTrackedAliveLostAndAliveAgain() throws {
        let r = try VeneerProcess.veneer(["run", "examples/heartbeat.toml", "--log-level", "info"], timeout: 120)
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        #expect(r.stdout.contains("channel flags 0x11 (enumerate device interface, named pipe), pipe mode 4 (message)"))
        #expect(r.stdout.contains("host offers framework 1.0 3.0, heartbeat 1.0 3.0"))
        #expect(r.stdout.contains("vmbus-heartbeat: heartbeat IC negotiated and answered"))
        for line in ["heartbeat IC: negotiated framework 3.0, heartbeat 3.0",
                     "heartbeat: guest health no contact -> ok: heartbeat 0 answered",
                     "heartbeat: guest health ok -> lost: 3 heartbeats in a row missed",
                     "heartbeat: guest health lost -> ok: heartbeat 6 answered"] {
            #expect(r.stderr.contains(line), "missing '\(line)' in stderr: \(r.stderr)")
        }
    }
}
