import Foundation
import Testing
import VeneerHost

/// The fw-cfg plugin under real KVM: a freestanding guest (examples/guests/fwcfg-test.s) reads the
/// signature, ID, CPU count, RAM size and directory over the ports and etc/e820 over DMA, and the
/// values it reports must be what the config says.
@Suite(.serialized, .enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct FWCfgGuestTests {
    static func expected(vcpus: Int, mib: Int, files: Int, e820Entries: Int) -> String {
        """
        fw-cfg-test: signature QEMU, ID 0x3, DMA port answers QEMU CFG
        fw-cfg-test: nb_cpus \(vcpus), the vCPU count
        fw-cfg-test: ram_size \(mib) MiB
        fw-cfg-test: directory has \(files) files, etc/e820 is \(e820Entries * 20) bytes at selector \(files == 5 ? "0x23" : "0x22")
        fw-cfg-test: etc/e820 by DMA matches the port read: \(e820Entries) entries, RAM from 1 MiB ends at 0x\(String(mib << 20, radix: 16))
        fw-cfg-test: DMA into the MMIO hole refused with the error bit
        fw-cfg-test: all checks passed

        """
    }

    @Test func theExampleGuestReadsTheMachine() throws {
        let r = try VeneerProcess.veneer(["run", "examples/fw-cfg.toml"], timeout: 60)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        // Five files: bootorder, etc/acpi/rsdp, etc/acpi/tables, etc/e820, etc/table-loader.
        #expect(r.stdout == Self.expected(vcpus: 2, mib: 64, files: 5, e820Entries: 6))
    }

    @Test(arguments: [(vcpus: 1, mib: 32), (vcpus: 3, mib: 128)])
    func valuesFollowTheConfig(vcpus: Int, mib: Int) throws {
        let config = try VeneerProcess.config("""
            memory = "\(mib)M"
            vcpus = \(vcpus)
            [boot]
            image = "{root}/examples/guests/build/fwcfg-test.bin"
            mode = "long"
            [[device]]
            plugin = "serial16550"
            [[device]]
            plugin = "debug-exit"
            [[device]]
            plugin = "fw-cfg"
            """)
        let r = try VeneerProcess.veneer(["run", config], timeout: 60)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout == Self.expected(vcpus: vcpus, mib: mib, files: 4, e820Entries: 6))
    }
}
