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
        // The NIC needs a switch, which needs CAP_NET_ADMIN: without it the VM runs without the NIC
        // and /init skips its network checks.
        let network = NetworkTestHost.skipReason == nil
        if !network { print("SKIPPED: the Linux guest's network checks: \(NetworkTestHost.skipReason ?? "")") }
        let config = try LinuxGuest.config(kernel: kernel, initrd: initrd, console: console, directory: scratch, nic: network)
        // The storvsp disks, fresh: the config's relative paths resolve inside the scratch directory.
        let disks = try LinuxGuest.createDisks(directory: scratch)

        let started = Date()
        // The storage checks (mke2fs, file I/O in interpreted kernel code) add minutes on a busy machine.
        let run: VeneerProcess.Result
        var hostNetwork: LinuxGuest.HostNetworkResult?
        if network {
            (run, hostNetwork) = try LinuxGuest.runWithNetwork(config: config, console: console, directory: scratch, timeout: 1500)
        } else {
            run = try VeneerProcess.run(VeneerProcess.executable, ["run", config, "--log-level", "debug"], timeout: 1500)
        }
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
        for check in ["hyperv", "vmbus-version", "clocksource", "clock-advances", "vmbus-devices", "heartbeat",
                      "storvsc", "disks", "mkfs", "filesystem", "direct-io", "read-only", "storvsc-log"] {
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

        // storvsp: both controllers' offers were opened by hv_storvsc, and the disks hold what the
        // guest wrote (checked from the host).
        for controller in LinuxGuest.storageControllers {
            let offer = offers.first { $0.instance == controller }
            #expect(offer?.type == LinuxGuest.scsiType, "no SCSI controller offer with instance \(controller)")
            #expect(devices.first { $0.instance == controller }?.driver == "hv_storvsc", "\(devices)")
        }
        try LinuxGuest.checkDisks(disks, report: report)

        // hv_netvsc against netvsp: the guest's own checks, and the host's side of the pings and
        // of the datagrams it sent with their checksums left to the host.
        if let hostNetwork {
            for check in ["netvsc", "netvsc-link", "netvsc-address", "ping-host", "host-pings", "checksum-offload", "netvsc-log"] {
                let line = report.first { $0.hasPrefix("veneer-init: check \(check):") }
                #expect(line?.contains(": PASS ") == true, "\(line ?? "no line for check \(check)")")
            }
            #expect(report.contains { $0.hasPrefix("veneer-init: network ") && $0.contains(" mac 00:15:5d:00:00:0a ") }, "\(report)")
            #expect(hostNetwork.ping.contains("10 packets transmitted, 10 received, 0% packet loss"), "host ping: \(hostNetwork.ping)")
            #expect(hostNetwork.datagrams.filter { $0.hasPrefix("veneer-linux ") }.count == 5,
                    "UDP datagrams from the guest at 10.99.0.1:7002: \(hostNetwork.datagrams)")
            let netvsc = try #require(offers.first { $0.type == LinuxGuest.networkType }, "no network adapter offer")
            #expect(devices.first { $0.instance == netvsc.instance }?.driver == "hv_netvsc", "\(devices)")
        }

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
    static func config(kernel: String, initrd: String, console: String, directory: String, nic: Bool) throws -> String {
        var text = try String(contentsOfFile: VeneerProcess.repoRoot + "/examples/linux.toml", encoding: .utf8)
        guard text.contains(nicBlock) else { throw TestFailure("examples/linux.toml has no NIC block:\n\(nicBlock)") }
        if !nic { text = text.replacingOccurrences(of: nicBlock, with: "") }
        text = text.replacingOccurrences(of: "kernel = \"linux/build/vmlinux\"", with: "kernel = \"\(kernel)\"")
        text = text.replacingOccurrences(of: "initrd = \"linux/build/initramfs.cpio\"", with: "initrd = \"\(initrd)\"")
        guard text.contains(kernel), text.contains(initrd) else { throw TestFailure("examples/linux.toml has other boot paths") }
        text += "\n[[device]]\nid = \"com1\"\nplugin = \"serial16550\"\noutput = \"\(console)\"\n"
        let path = directory + "/linux.toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let networkType = "f8615163-df3e-46c5-913f-f2d2f965ed0e"
    /// examples/linux.toml's NIC: dropped from the config where no switch can be made.
    static let nicBlock = """
        [[device]]
        id = "nic0"
        plugin = "netvsp"
        switch = "veneer0"
        mac = "00:15:5d:00:00:0a"
        """

    struct HostNetworkResult {
        var ping: String
        var datagrams: [String]
    }

    /// Runs the guest in a network namespace with the internal switch its config names
    /// (veneer0, the host at 10.99.0.1/24) and a UDP receiver on 10.99.0.1:7002; once /init says
    /// the network is ready, the host pings it 10 times.
    static func runWithNetwork(config: String, console: String, directory: String,
                               timeout: Double) throws -> (VeneerProcess.Result, HostNetworkResult) {
        let ns = try NetworkNamespace("vlx")
        defer { ns.close() }
        try ns.createSwitch("veneer0", type: "internal", address: "10.99.0.1/24")
        let received = directory + "/udp-received.txt"
        let receiver = try ns.start(["python3", "-c", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("10.99.0.1", 7002))
            while True:
                data, _ = s.recvfrom(2048)
                print(data.decode(errors="replace"), flush=True)
            """], stdout: received, stderr: directory + "/udp-receiver.err")
        let stdout = directory + "/veneer.stdout", stderr = directory + "/veneer.stderr"
        let process = try ns.start([VeneerProcess.executable, "run", config, "--log-level", "debug"], stdout: stdout, stderr: stderr)
        let deadline = Date().addingTimeInterval(timeout)
        var ping = "the guest never said its network was ready"
        while process.isRunning && Date() < deadline {
            let text = (try? String(contentsOfFile: console, encoding: .utf8)) ?? ""
            if text.contains("veneer-init: network ready") {
                let tool = NetworkTestHost.tool("ping") ?? "ping"
                let r = try ns.run([tool, "-c", "10", "-i", "0.5", "-W", "5", GuestAddress.linux], timeout: 120)
                ping = r.stdout + r.stderr
                break
            }
            usleep(500_000)
        }
        while process.isRunning && Date() < deadline { usleep(200_000) }
        if process.isRunning {
            ns.close()
            throw TestFailure("veneer run did not finish within \(Int(timeout)) s; console in \(console)")
        }
        receiver.terminate()
        let datagrams = ((try? String(contentsOfFile: received, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        let result = VeneerProcess.Result(status: process.terminationStatus,
                                          stdout: (try? String(contentsOfFile: stdout, encoding: .utf8)) ?? "",
                                          stderr: (try? String(contentsOfFile: stderr, encoding: .utf8)) ?? "")
        return (result, HostNetworkResult(ping: ping, datagrams: datagrams))
    }

    enum GuestAddress {
        /// examples/linux/network.c's address.
        static let linux = "10.99.0.10"
    }

    static let scsiType = "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f"
    /// The instance GUIDs examples/linux.toml gives its two storvsp controllers (init.c knows them too).
    static let storageControllers = ["d1e5c0a0-7e57-4a11-8d15-000000000001", "d1e5c0a0-7e57-4a11-8d15-000000000002"]

    /// Creates linux/build/disks/{fs.raw, data.vhdx, ro4k.raw} under `directory` with `veneer disk
    /// create`; returns that directory.
    static func createDisks(directory: String) throws -> String {
        let disks = directory + "/linux/build/disks"
        try FileManager.default.createDirectory(atPath: disks, withIntermediateDirectories: true)
        for arguments in [
            ["disk", "create", disks + "/fs.raw", "--format", "raw", "--size", "16M"],
            ["disk", "create", disks + "/data.vhdx", "--format", "vhdx", "--type", "dynamic", "--size", "32M",
             "--logical-sector", "512", "--physical-sector", "4096"],
            ["disk", "create", disks + "/ro4k.raw", "--format", "raw", "--size", "8M"],
        ] {
            let r = try VeneerProcess.run(VeneerProcess.executable, arguments)
            guard r.status == 0 else { throw TestFailure("veneer \(arguments.joined(separator: " ")): \(r.stderr)") }
        }
        return disks
    }

    /// init.c's file contents: byte i of generated file k.
    static func contentByte(_ k: UInt32, _ i: Int) -> UInt8 {
        let x = (UInt32(truncatingIfNeeded: i) &+ 1) &* 0x9E37_79B1 ^ k &* 0x85EB_CA6B
        return UInt8(truncatingIfNeeded: x >> 24 ^ x >> 7)
    }

    static let files: [(path: String, content: [UInt8])] = [
        ("/hello.txt", Array("Hello from Veneer's Linux guest: ext2 on a storvsp disk.\n".utf8)),
        ("/pattern.bin", (0..<256 * 1024).map { contentByte(1, $0) }),
        ("/dir/nested.bin", (0..<100_000).map { contentByte(2, $0) }),
    ]

    static func tool(_ name: String) -> String? {
        ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The host's view of what the guest wrote: the ext2 file system passes `e2fsck -n` and
    /// `debugfs` reads every file back as written; the O_DIRECT regions of the VHDX are there
    /// (`qemu-img check`, `qemu-img convert`); the read-only disk is untouched.
    static func checkDisks(_ disks: String, report: [String]) throws {
        // The guest's own hashes of what it read back, for the record.
        for (path, content) in files {
            let line = report.first { $0.hasPrefix("veneer-init: file \(path) ") }
            #expect(line?.contains(" \(content.count) bytes ") == true, "\(line ?? "no report for \(path)")")
        }
        if let e2fsck = tool("e2fsck"), let debugfs = tool("debugfs") {
            let check = try VeneerProcess.run(e2fsck, ["-f", "-n", disks + "/fs.raw"])
            #expect(check.status == 0, "e2fsck -f -n fs.raw: \(check.stdout)\(check.stderr)")
            for (path, content) in files {
                let out = disks + "/debugfs-out"
                let r = try VeneerProcess.run(debugfs, ["-R", "dump \(path) \(out)", disks + "/fs.raw"])
                #expect(r.status == 0, "debugfs dump \(path): \(r.stderr)")
                let got = (try? Data(contentsOf: URL(fileURLWithPath: out))).map { [UInt8]($0) }
                #expect(got == content, "debugfs: \(path) is \(got?.count ?? -1) bytes, differs from what the guest wrote")
                try? FileManager.default.removeItem(atPath: out)
            }
        } else {
            print("SKIPPED: e2fsck/debugfs (e2fsprogs) not installed: the file system is not checked from the host")
        }

        let ro = try Data(contentsOf: URL(fileURLWithPath: disks + "/ro4k.raw"))
        #expect(ro.count == 8 << 20 && ro.allSatisfy { $0 == 0 }, "ro4k.raw (read-only LUN) was written")

        guard let qemuImg = tool("qemu-img") else {
            print("SKIPPED: qemu-img not installed: data.vhdx is not checked from the host")
            return
        }
        let check = try VeneerProcess.run(qemuImg, ["check", "-f", "vhdx", disks + "/data.vhdx"])
        #expect(check.status == 0, "qemu-img check data.vhdx: \(check.stdout)\(check.stderr)")
        let converted = disks + "/data-vhdx.raw"
        let convert = try VeneerProcess.run(qemuImg, ["convert", "-f", "vhdx", "-O", "raw", disks + "/data.vhdx", converted])
        guard convert.status == 0 else { throw TestFailure("qemu-img convert data.vhdx: \(convert.stderr)") }
        let data = try Data(contentsOf: URL(fileURLWithPath: converted))
        #expect(data.count == 32 << 20)
        // init.c's direct_word at the regions it wrote: 1 MiB at 4 MiB and the last 64 KiB.
        for (offset, length) in [(4 << 20, 1 << 20), (data.count - 65536, 65536)] where data.count >= offset + length {
            let bad = stride(from: offset, to: offset + length, by: 8).first { o in
                let want = (UInt64(o) &+ 1) &* 0x9E37_79B9_7F4A_7C15 ^ 0x5E << 56
                let got = data[o..<o + 8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
                return got != want
            }
            #expect(bad == nil, "data.vhdx: O_DIRECT region at \(offset) differs at byte \(bad ?? 0)")
        }
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
