import Foundation
import Testing
import VeneerHost

/// Whole VMs on the real KVM: the README's commands and the guests in examples/.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct FlatGuestTests {
    @Test func helloPrintsThroughTheUARTPluginAndExitsZero() throws {
        let r = try VeneerProcess.veneer(["run", "examples/hello.toml"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout == "Hello from a Veneer guest!\n")
        #expect(r.stderr.isEmpty)
    }

    @Test func twoVCPUsRunInLongMode() throws {
        for _ in 0..<3 {  // the stop path once raced with a vCPU that had not been kicked yet
            let r = try VeneerProcess.veneer(["run", "examples/smp64.toml"], timeout: 30)
            #expect(r.status == 0, "stderr: \(r.stderr)")
            #expect(r.stdout == "smp64: 2 vCPUs in long mode\n")
        }
    }

    @Test func fourVCPUs() throws {
        let config = try VeneerProcess.config("""
            memory = "64M"
            vcpus = 4
            [boot]
            image = "{root}/examples/guests/build/smp64.bin"
            mode = "long"
            [[device]]
            plugin = "serial16550"
            [[device]]
            plugin = "debug-exit"
            """)
        let r = try VeneerProcess.veneer(["run", config], timeout: 30)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout == "smp64: 4 vCPUs in long mode\n")
    }

    @Test func theCExamplePluginWorksInsideAVM() throws {
        let r = try VeneerProcess.veneer(["run", "examples/scratchpad.toml"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.contains("scratchpad: ID, scratch and write count correct over PIO and MMIO"))
    }

    @Test func debugExitQEMUEncoding() throws {
        let config = try VeneerProcess.config("""
            [boot]
            image = "{root}/examples/guests/build/hello.bin"
            mode = "real"
            [[device]]
            plugin = "serial16550"
            output = "none"
            [[device]]
            plugin = "debug-exit"
            encoding = "qemu"
            """)
        let r = try VeneerProcess.veneer(["run", config])
        #expect(r.status == 1, "(0 << 1) | 1; stderr: \(r.stderr)")
    }

    @Test func uartOutputToAFile() throws {
        // Plugin parameters are passed through as written: relative paths are relative to the
        // working directory, so the config names the log file absolutely.
        let logPath = try VeneerProcess.config("", name: "console.log")
        let config = try VeneerProcess.config("""
            [boot]
            image = "{root}/examples/guests/build/hello.bin"
            mode = "real"
            [[device]]
            plugin = "serial16550"
            output = "\(logPath)"
            [[device]]
            plugin = "debug-exit"
            """)
        let r = try VeneerProcess.veneer(["run", config])
        #expect(r.status == 0)
        #expect(r.stdout.isEmpty)
        let log = try String(contentsOfFile: logPath, encoding: .utf8)
        #expect(log == "Hello from a Veneer guest!\n")
    }

    @Test func tripleFaultIsAClearErrorWithRegisters() throws {
        let config = try VeneerProcess.config("""
            [boot]
            image = "{root}/examples/guests/build/triple-fault.bin"
            mode = "long"
            [[device]]
            plugin = "debug-exit"
            """)
        let r = try VeneerProcess.veneer(["run", config])
        #expect(r.status == MachineExit.fault("").exitStatus)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.first?.hasPrefix("veneer: vCPU 0: guest triple fault (KVM_EXIT_SHUTDOWN) at RIP 0x") == true, "\(r.stderr)")
        #expect(r.stderr.contains("cr0 0x") && r.stderr.contains("rip 0x"))
    }

    @Test func sigtermStopsARunningVMCleanly() throws {
        // exits.bin with zero counts writes its status to 0xf4, unclaimed here, then spins forever.
        let config = try VeneerProcess.config("""
            vcpus = 2
            [boot]
            image = "{root}/examples/guests/build/exits.bin"
            mode = "long"
            [[device]]
            plugin = "debug-exit"
            port = 0xf5
            """)
        try VeneerProcess.buildExamples()
        let process = try VeneerProcess.start(VeneerProcess.executable, ["run", config])
        usleep(300_000)
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + SIGTERM)
    }
}
