import Testing
import VeneerHost

/// The KVP plugin on the real host with a guest that plays Linux's side (examples/guests/vmbus-echo
/// built with -DKVPGUEST): the guest refuses the first two requests as hv_utils does before
/// hv_kvp_daemon registers, then stores the host's pools and answers the enumerations. Everything
/// the plugin does here it does by itself after negotiation; both sides' logs are checked.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct KVPGuestTests {
    @Test func hostPoolsReachTheGuestAfterItsDaemonRegistersAndTheGuestsPoolsReachTheHost() throws {
        try VeneerProcess.buildExamples()
        let r = try VeneerProcess.veneer(["run", "examples/kvp.toml", "--log-level", "info"], timeout: 180)
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        for line in ["vmbus-kvp: negotiate: answered framework 3.0, KVP 4.0",
                     "vmbus-kvp: kvp: SET for pool 3 answered HV_E_FAIL: hv_kvp_daemon not registered yet",
                     "vmbus-kvp: kvp: hv_kvp_daemon registered",
                     "vmbus-kvp: kvp: pool 0 holds Environment=test Owner=ops",
                     "vmbus-kvp: kvp: pool 3 holds HostName=hv1 PhysicalHostName=hv1 PhysicalHostNameFullyQualified=hv1.example.org VirtualMachineName=kvp-example VirtualMachineId=6F1B3C2A-0D4E-4F5A-9B8C-7D6E5F4A3B2C",
                     "vmbus-kvp: kvp: ENUMERATE pool 1 index 1: HV_S_CONT",
                     "vmbus-kvp: KVP IC negotiated; pools exchanged"] {
            #expect(r.stdout.contains(line), "missing '\(line)' in stdout: \(r.stdout)")
        }
        for line in ["KVP IC: negotiated framework 3.0, KVP 4.0",
                     "KVP: the guest's KVP daemon is not running yet (HV_E_FAIL); retrying every 200 ms",
                     "KVP: the guest took the SET of 'Owner' in the external pool",
                     "KVP: the guest's auto pool holds 10 items: FullyQualifiedDomainName=vmbus-kvp.veneer.test; IntegrationServicesVersion=6.12.0; NetworkAddressIPv4=10.0.2.15; NetworkAddressIPv6=fe80::15; OSBuildNumber=6.12.0-veneer; OSName=Linux; OSMajorVersion=6; OSMinorVersion=12; OSVersion=#1 SMP; ProcessorArchitecture=x86_64",
                     "KVP: the guest's guest pool holds 1 items: GuestNote=written by the guest"] {
            #expect(r.stderr.contains(line), "missing '\(line)' in stderr: \(r.stderr)")
        }
    }
}
