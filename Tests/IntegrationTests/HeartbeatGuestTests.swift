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

    /// The time-sync and shutdown plugins next to it on the real host: the core gives timesync the
    /// partition reference time (ABI 1.5) in create, or it would refuse to start; both channels are
    /// offered and stay idle while the guest leaves them closed.
    @Test func timesyncAndShutdownLoadOnTheRealCoreBesideHeartbeat() throws {
        try VeneerProcess.buildExamples()
        let config = try VeneerProcess.config("""
            name = "ic-services"
            memory = "64M"
            hyperv = true
            [boot]
            format = "flat"
            image = "{root}/examples/guests/build/vmbus-heartbeat.bin"
            mode = "long"
            load_address = 0x100000
            [[device]]
            plugin = "serial16550"
            [[device]]
            plugin = "debug-exit"
            [[device]]
            plugin = "heartbeat"
            interval_ms = 200
            [[device]]
            plugin = "timesync"
            [[device]]
            plugin = "shutdown"
            """)
        let r = try VeneerProcess.veneer(["run", config, "--log-level", "debug"], timeout: 120)
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        #expect(r.stdout.contains("vmbus-heartbeat: heartbeat IC negotiated and answered"))
        #expect(!r.stderr.contains("timesync needs"), "\(r.stderr)")
        // The guest lists every offer it received.
        #expect(r.stdout.contains("type 9527e630-d0ae-497b-adce-e80ab0175caf instance 2dd1ce17-079e-403c-b352-a1921ee207ee"), "\(r.stdout)")
        #expect(r.stdout.contains("type 0e0b6031-5213-4934-818b-38d90ced39db instance b6650ff7-33bc-4840-8048-e0676786f393"), "\(r.stdout)")
    }
}
