import Foundation
import Testing
import VeneerHost

/// PCI in a real VM: the pci-host plugin's configuration mechanism, the core's bus and BAR
/// remapping, exercised by examples/guests/pci-scan.s against pci-testdev functions.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct PCITests {
    static let scan = """
        pci: 00:00.0 8086:7192 class 060000
        pci: 00:01.0 fffe:7e57 class ff0000
        pci: 00:05.0 fffe:7e58 class ff0000

        """

    @Test func scanSizeAndMoveBARsWhileAnotherVCPUReads() throws {
        for _ in 0..<3 {  // the remap stress is racy by design: run it more than once
            let r = try VeneerProcess.veneer(["run", "examples/pci.toml"], timeout: 60)
            #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
            #expect(r.stdout == Self.scan + """
                pci: BAR0 and BAR1 moved: new addresses answer, old ones read all ones
                pci: 2000 BAR moves while vCPU 1 read: every read was the ID or all ones
                pci: all checks passed

                """)
            #expect(r.stderr.isEmpty, "\(r.stderr)")
        }
    }

    @Test func oneVCPUAndAFunctionInTheLastSlot() throws {
        let config = try VeneerProcess.config("""
            memory = "32M"
            [boot]
            image = "{root}/examples/guests/build/pci-scan.bin"
            mode = "long"
            [[device]]
            plugin = "serial16550"
            [[device]]
            plugin = "pci-testdev"
            slot = 31
            [[device]]
            plugin = "pci-host"
            [[device]]
            plugin = "debug-exit"
            """)
        let r = try VeneerProcess.veneer(["run", config])
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        #expect(r.stdout == """
            pci: 00:00.0 8086:7192 class 060000
            pci: 00:1f.0 fffe:7e57 class ff0000
            pci: BAR0 and BAR1 moved: new addresses answer, old ones read all ones
            pci: all checks passed

            """)
    }

    @Test func withoutAConfigurationMechanismTheGuestSeesNoBus() throws {
        let config = try VeneerProcess.config("""
            [boot]
            image = "{root}/examples/guests/build/pci-scan.bin"
            mode = "long"
            [[device]]
            plugin = "serial16550"
            [[device]]
            plugin = "pci-testdev"
            [[device]]
            plugin = "debug-exit"
            """)
        let r = try VeneerProcess.veneer(["run", config])
        #expect(r.status == 1)
        #expect(r.stdout == "pci: FAILED host bridge at 00:00.0 is not an Intel 440BX host bridge\n")
    }

    @Test func aTakenSlotIsAConfigurationErrorNamingTheDevice() throws {
        let config = try VeneerProcess.config("""
            [boot]
            image = "{root}/examples/guests/build/pci-scan.bin"
            mode = "long"
            [[device]]
            plugin = "pci-host"
            [[device]]
            id = "nic0"
            plugin = "pci-testdev"
            slot = 3
            [[device]]
            id = "nic1"
            plugin = "pci-testdev"
            slot = 3
            """)
        let r = try VeneerProcess.veneer(["run", config])
        #expect(r.status == SetupExitStatus.plugin)
        let line = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(line.contains("device 'nic1' (plugin pci-testdev): create failed"), "\(r.stderr)")
        #expect(line.hasSuffix("create failed: cannot register PCI function 0xfffe:0x7e57: already in use (PCI function 0xfffe:0x7e57: slot 3 is taken)"), "\(r.stderr)")
    }
}
