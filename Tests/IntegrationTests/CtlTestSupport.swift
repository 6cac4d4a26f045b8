import Foundation
import Synchronization
import VeneerHost

/// A real veneerd on a fresh state directory, driven with the real `veneer ctl`.
final class VeneerdUnderTest: @unchecked Sendable {
    let stateDirectory: String
    var socket: String { stateDirectory + "/veneerd.sock" }
    /// The running veneerd (replaced by `restart`); guarded by `lock`.
    private let lock = Mutex<Process?>(nil)

    static var executable: String { (PluginRegistry.executableDirectory() ?? ".") + "/veneerd" }

    init() throws {
        try VeneerProcess.buildExamples()
        // Short: a UNIX socket path is at most 107 bytes.
        stateDirectory = "/tmp/vctl-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: false)
        try start()
    }

    var pid: Int32 { lock.withLock { $0?.processIdentifier ?? 0 } }

    /// Starts veneerd (its log appended to STATE/veneerd.log) and waits until its API answers.
    func start() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw TestFailure("\(Self.executable) is not built (veneerd comes from the veneerd helper's branch)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = ["--state-dir", stateDirectory, "--log-level", "info"]
        if !FileManager.default.fileExists(atPath: logPath) { FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        lock.withLock { $0 = process }
        try waitUntil("veneerd answers on \(socket)", timeout: 60) {
            guard process.isRunning else { throw TestFailure("veneerd exited (\(process.terminationStatus)): \(self.log)") }
            return try self.ctl(["list"]).status == 0
        }
    }

    /// Outside the state directory, so the stray-file checks see only what veneerd made.
    private var logName: String { (stateDirectory as NSString).lastPathComponent + ".veneerd.log" }
    var logPath: String { "/tmp/" + logName }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) {
        lock.withLock { process in
            guard let process, process.isRunning else { return }
            kill(process.processIdentifier, number)
            process.waitUntilExit()
        }
    }

    /// `veneer ctl ARGS --socket S`.
    func ctl(_ arguments: [String], timeout: Double = 300) throws -> VeneerProcess.Result {
        try VeneerProcess.run(VeneerProcess.executable, ["ctl"] + arguments + ["--socket", socket], timeout: timeout)
    }

    /// `veneer ctl ARGS --json --socket S`, which must succeed; its JSON parsed.
    func json(_ arguments: [String]) throws -> Any {
        let r = try ctl(arguments + ["--json"])
        guard r.status == 0 else { throw TestFailure("ctl \(arguments.joined(separator: " ")) failed (\(r.status)): \(r.stderr)") }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    func details(_ name: String) throws -> VMInfo { VMInfo(try json(["info", name])) }

    func define(_ config: String, extra: [String] = []) throws {
        let r = try ctl(["define", config] + extra)
        guard r.status == 0 else { throw TestFailure("define \(config) failed (\(r.status)): \(r.stderr)") }
    }

    func waitForState(_ name: String, _ state: String, timeout: Double = 120) throws {
        try waitUntil("VM \(name) is \(state)", timeout: timeout) { try self.details(name).state == state }
    }

    /// Turns every VM off and deletes it, stops veneerd, kills any worker left, removes the state.
    func tearDown() {
        if pid != 0, lock.withLock({ $0?.isRunning ?? false }) {
            if let vms = try? json(["list"]) as? [[String: Any]] {
                for vm in vms.compactMap({ $0["name"] as? String }) {
                    _ = try? ctl(["stop", vm])
                    _ = try? ctl(["delete", vm])
                }
            }
        }
        // SIGKILL: children of the test runner inherit its blocked SIGTERM.
        signal(SIGKILL)
        for pid in Self.workerPIDs(stateDirectory: stateDirectory) { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }

    /// Processes whose command line names this state directory: the workers veneerd spawned.
    static func workerPIDs(stateDirectory: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return arguments.contains { $0.hasPrefix(stateDirectory + "/") } && !arguments.contains("--state-dir")
        }
    }

    /// Open file descriptors of the running veneerd.
    var openFileCount: Int { ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count }
}

/// The parts of `info --json` (VMDetails) the tests read.
struct VMInfo {
    let raw: [String: Any]
    init(_ json: Any) { raw = json as? [String: Any] ?? [:] }
    var summary: [String: Any] { raw["summary"] as? [String: Any] ?? [:] }
    var state: String { summary["state"] as? String ?? "" }
    var pid: Int32? { (summary["pid"] as? NSNumber)?.int32Value }
    var restarts: Int { (raw["restarts"] as? NSNumber)?.intValue ?? 0 }
    var lastExit: [String: Any]? { raw["lastExit"] as? [String: Any] }
    var worker: [String: Any]? { raw["worker"] as? [String: Any] }
}

/// Polls `condition` every 100 ms until it holds; fails naming `what` after `timeout` seconds.
/// (A bound on waiting, not a speed assertion: the timeouts are minutes on a loaded machine.)
func waitUntil(_ what: String, timeout: Double, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return }
        guard Date() < deadline else { throw TestFailure("timed out after \(timeout) s waiting until \(what)") }
        usleep(100_000)
    }
}

/// A child with a stdin pipe whose stdout and stderr are collected as they come (console, events).
final class InteractiveProcess: @unchecked Sendable {
    let process = Process()
    private let input = Pipe()
    private let output = DataSink()
    private let errors = DataSink()
    private let readers = DispatchGroup()

    init(_ path: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardInput = input
        process.standardOutput = out
        process.standardError = err
        try process.run()
        for (pipe, sink) in [(out, output), (err, errors)] {
            readers.enter()
            let handle = pipe.fileHandleForReading
            DispatchQueue.global().async { [readers] in
                while true {
                    let data = handle.availableData
                    if data.isEmpty { break }
                    sink.data.withLock { $0.append(data) }
                }
                readers.leave()
            }
        }
    }

    var stdout: String { String(decoding: output.data.withLock { $0 }, as: UTF8.self) }
    var stderr: String { String(decoding: errors.data.withLock { $0 }, as: UTF8.self) }

    func write(_ bytes: [UInt8]) { input.fileHandleForWriting.write(Data(bytes)) }
    func closeInput() { try? input.fileHandleForWriting.close() }

    func waitForOutput(containing text: String, timeout: Double = 60) throws {
        try waitUntil("'\(text)' in the output of \(process.arguments?.joined(separator: " ") ?? "")", timeout: timeout) {
            stdout.contains(text)
        }
    }

    /// Waits for the exit (SIGKILL after `timeout`); its status.
    @discardableResult
    func wait(timeout: Double = 60) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw TestFailure("\(process.arguments?.joined(separator: " ") ?? "") did not exit within \(timeout) s")
        }
        readers.wait()
        return process.terminationStatus
    }

    /// SIGKILL: children of the test runner inherit its blocked SIGTERM.
    func terminate() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        readers.wait()
    }
}

enum CounterGuest {
    /// A counter VM (examples/guests/counter.s): reports "count C tick T pm P" on COM1 ten times a
    /// second and powers off on the ACPI power button. Written into a fresh directory.
    static func config(name: String, memory: String = "32M", vcpus: Int = 2) throws -> String {
        try VeneerProcess.config("""
            name = "\(name)"
            generation = 1
            memory = "\(memory)"
            vcpus = \(vcpus)
            [boot]
            format = "flat"
            image = "{root}/examples/guests/build/counter.bin"
            mode = "long"
            [[device]]
            id = "com1"
            plugin = "serial16550"
            output = "stdout"
            input = "stdin"
            """, name: "\(name).toml")
    }

    /// The largest "count C" the console shows (its ring first, then live output): attaches with
    /// `veneer ctl console` on a pipe, waits for two report lines, detaches with Ctrl-].
    static func latestCount(_ veneerd: VeneerdUnderTest, vm: String) throws -> (count: Int, tick: Int) {
        let console = try InteractiveProcess(VeneerProcess.executable, ["ctl", "console", vm, "--socket", veneerd.socket])
        defer { console.terminate() }
        try waitUntil("two count lines from \(vm)'s console", timeout: 60) { reports(console.stdout).count >= 2 }
        console.write([0x1D])
        let status = try console.wait()
        guard status == 0 else { throw TestFailure("console exited \(status): \(console.stderr)") }
        guard let last = reports(console.stdout).last else { throw TestFailure("no count line") }
        return last
    }

    /// Every complete "count C tick T ..." line in console output.
    static func reports(_ text: String) -> [(count: Int, tick: Int)] {
        var lines = text.split(whereSeparator: \.isNewline)
        if let last = text.last, !last.isNewline, !lines.isEmpty { lines.removeLast() }  // still being written
        return lines.compactMap { line in
            let words = line.split(separator: " ")
            guard words.count >= 4, words[0] == "count", words[2] == "tick", let c = Int(words[1]), let t = Int(words[3]) else { return nil }
            return (c, t)
        }
    }
}
