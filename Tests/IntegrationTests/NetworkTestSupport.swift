import Foundation
import Synchronization
import Testing

/// What the network integration tests need from the machine: /dev/kvm, CAP_NET_ADMIN (switches,
/// TAPs and namespaces) and iproute2's `ip`. Each test builds its hosts in network namespaces it
/// creates and deletes, so nothing it makes outlives it or meets the machine's own interfaces.
enum NetworkTestHost {
    static func tool(_ name: String) -> String? {
        ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/bin"].map { "\($0)/\(name)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// CAP_NET_ADMIN (bit 12) in this process's effective set: a uid check alone is not enough.
    static let hasNetAdmin: Bool = {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let bits = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return false }
        return bits & (1 << 12) != 0
    }()

    /// Why these tests cannot run here, or nil.
    static let skipReason: String? = {
        if !VeneerProcess.kvmAvailable { return "/dev/kvm is not available" }
        if !hasNetAdmin { return "no CAP_NET_ADMIN (switches, TAPs and network namespaces need it)" }
        if tool("ip") == nil { return "iproute2's ip is not installed" }
        return nil
    }()

    static var canRun: Bool {
        if let skipReason { print("SKIPPED: \(skipReason)") }
        return skipReason == nil
    }

    /// A short random suffix: namespace and switch names stay within IFNAMSIZ and never collide
    /// with a concurrent run.
    static func suffix() -> String { String(UInt32.random(in: 0..<UInt32.max), radix: 36) }
}

/// A network namespace this test created; `close` stops what runs inside and deletes it, which
/// removes every bridge, TAP and veth in it.
final class NetworkNamespace: @unchecked Sendable {
    let name: String
    private let processes = Mutex<[Process]>([])
    private let ip: String

    init(_ prefix: String = "vnt") throws {
        guard let ip = NetworkTestHost.tool("ip") else { throw TestFailure("iproute2's ip is not installed") }
        self.ip = ip
        name = "\(prefix)-\(NetworkTestHost.suffix())"
        try runChecked(ip, ["netns", "add", name])
        try runChecked(ip, ["-n", name, "link", "set", "lo", "up"])
    }

    /// Runs `arguments` inside the namespace and waits.
    func run(_ arguments: [String], timeout: Double = 120) throws -> VeneerProcess.Result {
        try VeneerProcess.run(ip, ["netns", "exec", name] + arguments, timeout: timeout)
    }

    @discardableResult
    func runChecked(_ arguments: [String], timeout: Double = 120) throws -> VeneerProcess.Result {
        let r = try run(arguments, timeout: timeout)
        guard r.status == 0 else {
            throw TestFailure("in \(name): \(arguments.joined(separator: " ")) exited \(r.status): \(r.stdout)\(r.stderr)")
        }
        return r
    }

    /// `veneer switch create` inside the namespace.
    func createSwitch(_ switchName: String, type: String, address: String? = nil) throws {
        var arguments = [VeneerProcess.executable, "switch", "create", switchName, "--type", type]
        if let address { arguments += ["--address", address] }
        try runChecked(arguments)
    }

    /// Starts `arguments` inside the namespace with stdout and stderr going to files; stopped by
    /// `close` if still running.
    func start(_ arguments: [String], stdout: String, stderr: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ip)
        process.arguments = ["netns", "exec", name] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: VeneerProcess.repoRoot)
        _ = FileManager.default.createFile(atPath: stdout, contents: nil)
        _ = FileManager.default.createFile(atPath: stderr, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: stdout)
        process.standardError = FileHandle(forWritingAtPath: stderr)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        processes.withLock { $0.append(process) }
        return process
    }

    func close() {
        for process in processes.withLock({ $0 }) where process.isRunning {
            process.terminate()
            let grace = Date().addingTimeInterval(5)
            while process.isRunning && Date() < grace { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        _ = try? VeneerProcess.run(ip, ["netns", "del", name])
    }

    private func runChecked(_ path: String, _ arguments: [String]) throws {
        let r = try VeneerProcess.run(path, arguments)
        guard r.status == 0 else { throw TestFailure("\(path) \(arguments.joined(separator: " ")): \(r.stderr)") }
    }

    /// A veth pair: `inside` stays in this namespace (e.g. to join a switch), `outside` moves to
    /// `peer` with `address` and comes up there.
    func veth(inside: String, outside: String, peer: NetworkNamespace, address: String) throws {
        try runChecked([ip, "link", "add", inside, "type", "veth", "peer", "name", outside])
        try runChecked([ip, "link", "set", outside, "netns", peer.name])
        try runChecked([ip, "link", "set", inside, "up"])
        try peer.runChecked([ip, "addr", "add", address, "dev", outside])
        try peer.runChecked([ip, "link", "set", outside, "up"])
    }

    /// Sends the datagram that ends a netvsc guest's waiting modes (port 9, "veneer-netvsc-stop").
    func stopGuest(_ address: String) throws {
        try runChecked(["python3", "-c", """
            import socket
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"veneer-netvsc-stop", ("\(address)", 9))
            """])
    }
}

/// One `veneer run` of a netvsc test guest (examples/guests/netvsc) in a namespace, its serial
/// console in a file the test reads while it runs.
final class NetworkGuest: @unchecked Sendable {
    let name: String
    let mac: String
    let console: String
    let log: String
    let process: Process

    /// `image`: netvsc.bin or netvsc-<mode>.bin; `nic`: the netvsp device's parameters besides
    /// plugin and id (switch, mac, vlan, ...), as TOML lines.
    init(_ namespace: NetworkNamespace, name: String, image: String, switchName: String, mac: String, nic: [String] = [],
         directory: String) throws {
        try VeneerProcess.buildExamples()
        self.name = name
        self.mac = mac
        console = "\(directory)/\(name).console"
        log = "\(directory)/\(name).log"
        _ = FileManager.default.createFile(atPath: console, contents: nil)
        let config = """
            name = "\(name)"
            memory = "64M"
            vcpus = 4
            hyperv = true

            [boot]
            format = "flat"
            image = "\(VeneerProcess.repoRoot)/examples/guests/build/\(image)"
            mode = "long"
            load_address = 0x100000

            [[device]]
            id = "com1"
            plugin = "serial16550"
            output = "\(console)"

            [[device]]
            id = "exit"
            plugin = "debug-exit"

            [[device]]
            id = "nic0"
            plugin = "netvsp"
            switch = "\(switchName)"
            mac = "\(mac)"
            \(nic.joined(separator: "\n"))

            """
        let path = "\(directory)/\(name).toml"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        process = try namespace.start([VeneerProcess.executable, "run", path], stdout: "\(directory)/\(name).stdout", stderr: log)
    }

    var output: String { (try? String(contentsOfFile: console, encoding: .utf8)) ?? "" }

    /// The console's lines (the guest ends them with "\r\n").
    var lines: [String] {
        output.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// What a failure message shows: the console's tail and the log's.
    var tail: String {
        "\(name) console:\n" + lines.suffix(25).joined(separator: "\n") + "\n\(name) log:\n"
            + logText.split(separator: "\n").suffix(15).joined(separator: "\n")
    }

    /// Waits for a console line containing `text`; fails early if the guest exits or reports a
    /// failure first.
    func waitFor(_ text: String, timeout: Double) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = lines.first(where: { $0.contains(text) }) { return line }
            if lines.contains(where: { $0.contains(": FAILED ") }) || !process.isRunning {
                throw TestFailure("\(name) ended or failed before printing \"\(text)\"\n\(tail)")
            }
            usleep(100_000)
        }
        throw TestFailure("\(name) did not print \"\(text)\" within \(Int(timeout)) s\n\(tail)")
    }

    /// Waits for `veneer run` to end; its exit status (the guest's debug-exit code).
    func waitForExit(timeout: Double) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(100_000) }
        guard !process.isRunning else { throw TestFailure("\(name) still running after \(Int(timeout)) s\n\(tail)") }
        return process.terminationStatus
    }

    /// Warnings and errors in Veneer's log (a refused message, a dropped or malformed packet).
    var logProblems: [String] {
        logText.split(separator: "\n").map(String.init).filter { $0.contains(": warning: ") || $0.contains(": error: ") }
    }
}

/// Scratch files for one test (configs, consoles, logs), removed afterwards unless the test failed
/// and `VENEER_KEEP_NETWORK_SCRATCH` is set.
final class NetworkScratch {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "/veneer-net-it-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        if ProcessInfo.processInfo.environment["VENEER_KEEP_NETWORK_SCRATCH"] == nil {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}

/// How long a netvsc guest may take to bring its NIC up: its setup runs at CPL0, which this
/// host's KVM may interpret, next to other VMs on a small machine.
let netvscBringUpSeconds: Double = 300
