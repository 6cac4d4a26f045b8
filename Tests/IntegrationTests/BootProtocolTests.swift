import Foundation
import Testing
@testable import VeneerHost

/// The boot-protocol loaders against real KVM: each test kernel (examples/guests) checks what the
/// loader handed it and reports on the UART; exit status 0 means every check passed.
@Suite(.serialized, .enabled(if: KVMSystem.isAvailable(), "SKIPPED: /dev/kvm not available"))
struct BootProtocolTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var config: String
        /// The whole UART output: each kernel's report is deterministic for its 64 MiB config.
        var uart: [String]
        var testDescription: String { "examples/\(config).toml" }
    }

    static let passing = [
        Case(config: "multiboot", uart: [
            "multiboot-test: EAX magic 0x2badb002, info at 0x00001000",
            "multiboot-test: cmdline 'veneer-test answer=42'",
            "multiboot-test: boot loader 'veneer'",
            "multiboot-test: mem_lower 639 KiB, mem_upper 64512 KiB, mmap usable RAM from 1 MiB ends at 0x04000000",
            "multiboot-test: module 'mod-arg=7', 93 bytes at 0x03fff000, contents match",
            "multiboot-test: all checks passed",
        ]),
        // The same kernel linked at 0x8000: the information goes around it, in the page below.
        Case(config: "multiboot-low", uart: [
            "multiboot-test: EAX magic 0x2badb002, info at 0x00001000",
            "multiboot-test: cmdline 'veneer-test answer=42'",
            "multiboot-test: boot loader 'veneer'",
            "multiboot-test: mem_lower 639 KiB, mem_upper 64512 KiB, mmap usable RAM from 1 MiB ends at 0x04000000",
            "multiboot-test: module 'mod-arg=7', 93 bytes at 0x03fff000, contents match",
            "multiboot-test: all checks passed",
        ]),
        Case(config: "pvh", uart: [
            "pvh-test: start_info magic 0x336ec578 at 0x00001000, version 1",
            "pvh-test: cmdline 'veneer-test answer=42'",
            "pvh-test: memmap 9 entries, usable RAM at 0 and at 1 MiB",
            "pvh-test: initrd module 6900 bytes at 0x03ffe000, contents match",
            "pvh-test: all checks passed",
        ]),
        Case(config: "linux-boot", uart: [
            "linux-boot-test: startup_64 at 0x1000200 in long mode, CS 0x10, DS/ES/SS 0x18, zero page at 0x1000",
            "linux-boot-test: zero page has boot_flag 0xaa55, HdrS 2.15, type_of_loader 0xff",
            "linux-boot-test: cmdline 'veneer-test answer=42'",
            "linux-boot-test: e820 9 entries, usable RAM at 0 and at 1 MiB",
            "linux-boot-test: initrd 6900 bytes at 0x3ffe000, contents match",
            "linux-boot-test: all checks passed",
        ]),
    ]

    @Test(arguments: passing)
    func kernelPassesItsChecks(_ c: Case) throws {
        let scratch = try BootTestSupport.Scratch()
        let uart = scratch.path + "/uart.txt"
        let boot = try BootTestSupport.boot(try BootTestSupport.exampleConfig(c.config, uartOutput: uart), uartOutput: uart)
        #expect(boot.exit == .guestExit(0), "UART:\n\(boot.uart)")
        #expect(boot.lines == c.uart + [""])
    }

    /// The kernels' checks are live: a config that gives them something else makes them fail,
    /// saying what was wrong.
    enum Spoil: String, Sendable, CaseIterable, CustomTestStringConvertible {
        case multibootCmdline, pvhInitrd, linuxWithoutInitrd
        var testDescription: String { rawValue }
    }

    @Test(arguments: Spoil.allCases)
    func kernelNoticesWrongBootData(_ spoil: Spoil) throws {
        let scratch = try BootTestSupport.Scratch()
        let uart = scratch.path + "/uart.txt"
        let expected: String
        var config: VMConfig
        switch spoil {
        case .multibootCmdline:
            config = try BootTestSupport.exampleConfig("multiboot", uartOutput: uart)
            guard case .multiboot(var m) = config.boot else { throw BootTestSupport.Failure(description: "not multiboot") }
            m.cmdline = "veneer-test answer=43"
            config.boot = .multiboot(m)
            expected = "multiboot-test: FAILED cmdline is not 'veneer-test answer=42'"
        case .pvhInitrd:
            config = try BootTestSupport.exampleConfig("pvh", uartOutput: uart)
            guard case .pvh(var p) = config.boot else { throw BootTestSupport.Failure(description: "not pvh") }
            p.initrd = BootTestSupport.repoRoot + "/examples/guests/multiboot-module.txt"
            config.boot = .pvh(p)
            expected = "pvh-test: FAILED initrd size differs from build/test-initrd.txt"
        case .linuxWithoutInitrd:
            config = try BootTestSupport.exampleConfig("linux-boot", uartOutput: uart)
            guard case .bzImage(var b) = config.boot else { throw BootTestSupport.Failure(description: "not bzimage") }
            b.initrd = nil
            config.boot = .bzImage(b)
            expected = "linux-boot-test: FAILED ramdisk_image missing, above 4 GiB or not page aligned"
        }
        let boot = try BootTestSupport.boot(config, uartOutput: uart)
        #expect(boot.exit == .guestExit(1), "UART:\n\(boot.uart)")
        #expect(boot.lines.dropLast().last == expected, "UART:\n\(boot.uart)")
    }

    /// With a real boot protocol only the bootstrap processor starts; the AP stays in KVM's
    /// reset state waiting for INIT/SIPI (it would otherwise run the kernel a second time and
    /// print twice), and stopping the VM still gets it out of KVM_RUN.
    @Test func apWaitsForSIPI() throws {
        let scratch = try BootTestSupport.Scratch()
        let uart = scratch.path + "/uart.txt"
        var config = try BootTestSupport.exampleConfig("linux-boot", uartOutput: uart)
        config.vcpus = 2
        let boot = try BootTestSupport.boot(config, uartOutput: uart)
        #expect(boot.exit == .guestExit(0), "UART:\n\(boot.uart)")
        #expect(boot.lines == Self.passing[3].uart + [""])
    }
}
