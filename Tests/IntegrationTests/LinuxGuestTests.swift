import Foundation
import Testing
import VeneerHost

/// A real Linux 6.12 with its own Hyper-V drivers against Veneer: one boot that performs every
/// Linux check (later VSPs add theirs to the same boot, not a boot each: one costs minutes on a
/// host that interprets guest kernel code). The guest's /init (examples/linux/init.c) reports on
/// the console; Veneer's debug log says what the VMBus host saw.
@Suite(.serialized, .enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm not available"),
       .enabled("SKIPPED: this machine cannot build the Linux test guest") { LinuxGuest.canBuild() })
struct LinuxGuestTests {
    @Test(.timeLimit(.minutes(45)))
    func linuxDriversUseVeneersHyperVInterface() throws {
        let (kernel, initrd) = try LinuxGuest.build()
        // The last run's console and log stay in .build/linux-guest/ for whoever reads a failure.
        let scratch = VeneerProcess.repoRoot + "/.build/linux-guest"
        try? FileManager.default.removeItem(atPath: scratch)
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let console = scratch + "/console.txt"
        let config = try LinuxGuest.config(kernel: kernel, initrd: initrd, console: console, directory: scratch)

        let started = Date()
        let run = try VeneerProcess.run(VeneerProcess.executable, ["run", config, "--log-level", "debug"], timeout: 600)
        let seconds = Int(Date().timeIntervalSince(started))
        let output = (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
        // The guest's serial console ends lines with "\r\n", a single Character in Swift.
        let lines = output.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .whitespaces) }
        let log = run.stderr.split(separator: "\n").map(String.init)
        try run.stderr.write(toFile: scratch + "/veneer.log", atomically: true, encoding: .utf8)
        let report = lines.filter { $0.hasPrefix("veneer-init:") }
        print("linux guest: exit \(run.status) after \(seconds) s\n" + report.joined(separator: "\n"))

        // A clean ACPI power-off after /init's report: not a reset (a panic reboots, panic=-1).
        let tail = "console and log in \(scratch); console tail:\n" + lines.suffix(30).joined(separator: "\n")
        #expect(run.status == 0, "veneer run exit status; \(tail)")
        #expect(!log.contains { $0.contains("guest requested a reset") }, "the guest reset; \(tail)")
        #expect(report.contains("veneer-init: powering off"), "\(tail)")
        for check in ["hyperv", "vmbus-version", "clocksource", "clock-advances", "vmbus-devices", "heartbeat"] {
            let line = report.first { $0.hasPrefix("veneer-init: check \(check):") }
            #expect(line?.contains(": PASS ") == true, "\(line ?? "no line for check \(check)")")
        }
        #expect(report.contains { $0.hasPrefix("veneer-init: all ") && $0.hasSuffix(" checks passed") })

        // The kernel's own view, from its log on the console.
        #expect(lines.contains { $0.contains("Hypervisor detected: Microsoft Hyper-V") })
        #expect(lines.contains { $0.contains("hv_vmbus: Vmbus version:5.3") })
        #expect(lines.contains { $0.contains("clocksource: Switched to clocksource hyperv_clocksource_tsc_page") })

        // Every offer the host made became a device in the guest, bound to a driver.
        let offers = log.compactMap(LinuxGuest.offer)
        #expect(!offers.isEmpty, "no OFFERCHANNEL in the debug log")
        let devices = report.compactMap(LinuxGuest.device)
        for offer in offers {
            let device = devices.first { $0.instance == offer.instance }
            #expect(device?.type == offer.type, "offer \(offer) has no device in the guest: \(devices)")
            #expect(device.map { $0.driver != "none" } == true, "offer \(offer) has no driver in the guest")
        }

        // hv_utils opened the heartbeat channel, negotiated, and answers heartbeats.
        let heartbeat = try #require(offers.first { $0.type == LinuxGuest.heartbeatType }, "no heartbeat offer")
        #expect(log.contains { $0.contains("guest -> host: OPENCHANNEL relid \(heartbeat.relid) ") })
        #expect(log.contains { $0.contains("host -> VP 0: OPENCHANNEL_RESULT relid \(heartbeat.relid) ") && $0.hasSuffix("status 0x0") })
        #expect(log.contains { $0.contains("[heartbeat]") && $0.contains("negotiated framework 3.0, heartbeat 3.0") })
        #expect(log.contains { $0.contains("[heartbeat]") && $0.contains("no contact -> ok") })

        // No protocol error from the real driver: nothing refused, dropped or faulted.
        let problems = log.filter(LinuxGuest.isProtocolProblem)
        #expect(problems.isEmpty, "Veneer logged problems:\n\(problems.prefix(20).joined(separator: "\n"))")
    }
}

enum LinuxGuest {
    static let heartbeatType = "57164f39-9115-4e78-ab55-382f3bd5422d"
    static let script = VeneerProcess.repoRoot + "/examples/linux/build-guest"

    /// Whether this machine has what the build needs; prints the script's SKIPPED reason if not.
    static func canBuild() -> Bool {
        guard let r = try? VeneerProcess.run(script, ["--check"], timeout: 60) else { return false }
        if r.status != 0 { print(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) }
        return r.status == 0
    }

    /// The kernel and initramfs; the first build on a machine takes about 15 minutes.
    static func build() throws -> (kernel: String, initrd: String) {
        let r = try VeneerProcess.run(script, [], timeout: 40 * 60)
        guard r.status == 0 else { throw TestFailure("examples/linux/build-guest failed (\(r.status)):\n\(r.stderr)") }
        let paths = r.stdout.split(separator: "\n").map(String.init)
        guard paths.count == 2 else { throw TestFailure("examples/linux/build-guest printed \(paths)") }
        return (paths[0], paths[1])
    }

    /// examples/linux.toml with absolute boot paths and the console in a file.
    static func config(kernel: String, initrd: String, console: String, directory: String) throws -> String {
        var text = try String(contentsOfFile: VeneerProcess.repoRoot + "/examples/linux.toml", encoding: .utf8)
        text = text.replacingOccurrences(of: "kernel = \"linux/build/vmlinux\"", with: "kernel = \"\(kernel)\"")
        text = text.replacingOccurrences(of: "initrd = \"linux/build/initramfs.cpio\"", with: "initrd = \"\(initrd)\"")
        guard text.contains(kernel), text.contains(initrd) else { throw TestFailure("examples/linux.toml has other boot paths") }
        text += "\n[[device]]\nid = \"com1\"\nplugin = \"serial16550\"\noutput = \"\(console)\"\n"
        let path = directory + "/linux.toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    struct Offer: CustomStringConvertible {
        var relid: String
        var type: String
        var instance: String
        var description: String { "relid \(relid) type \(type) instance \(instance)" }
    }

    /// "... host -> VP 0: OFFERCHANNEL relid 1 type T instance I connection ..."
    static func offer(_ line: String) -> Offer? {
        guard let at = line.range(of: "OFFERCHANNEL relid ") else { return nil }
        let words = line[at.upperBound...].split(separator: " ").map(String.init)
        guard words.count >= 5, words[1] == "type", words[3] == "instance" else { return nil }
        return Offer(relid: words[0], type: words[2], instance: words[4])
    }

    /// "veneer-init: vmbus device I class T driver D state S"
    static func device(_ line: String) -> (instance: String, type: String, driver: String)? {
        let words = line.split(separator: " ").map(String.init)
        guard words.count >= 9, words[1] == "vmbus", words[2] == "device", words[4] == "class", words[6] == "driver" else { return nil }
        return (words[3], words[5], words[7])
    }

    /// Warnings and errors from the VMBus host or a VSP: a refused or dropped message, a ring
    /// fault. The host's notes about this machine (instruction fallbacks, CPU masks) are not.
    static func isProtocolProblem(_ line: String) -> Bool {
        guard line.contains(": warning: ") || line.contains(": error: ") else { return false }
        return !(line.contains("[vcpu") && line.contains("cannot emulate")) && !line.contains("[cpu]")
    }
}
