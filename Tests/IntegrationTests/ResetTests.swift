import Testing
import VeneerHost

/// `on_reset`: a guest-requested reset (i8042 command 0xFE) ends the VM, or boots it again.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct ResetTests {
    func config(_ onReset: String) throws -> String {
        // A fresh directory, and no file yet: the plugin creates it at the first NVRAM write.
        let nvram = try VeneerProcess.config("", name: "unused").replacingOccurrences(of: "/unused", with: "/cmos.nvram")
        return try VeneerProcess.config("""
            generation = 1
            on_reset = "\(onReset)"
            [boot]
            image = "{root}/examples/guests/build/reset-once.bin"
            mode = "real"
            [[device]]
            plugin = "cmos-rtc"
            nvram = "\(nvram)"
            [[device]]
            plugin = "debug-exit"
            """)
    }

    @Test func restartBootsTheMachineAgainWithItsNVRAM() throws {
        let r = try VeneerProcess.veneer(["run", "--log-level", "info", try config("restart")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "reset-once: came back after a reset\n")
        #expect(r.stderr.contains("guest requested a reset: restarting"))
    }

    @Test func stopEndsTheVMAtTheReset() throws {
        let r = try VeneerProcess.veneer(["run", "--log-level", "info", try config("stop")])
        #expect(r.status == MachineExit.reset.exitStatus)
        #expect(r.stdout.isEmpty, "the guest never came back")
        #expect(r.stderr.contains("guest requested a reset; the VM stops (on_reset = stop)"))
    }
}
