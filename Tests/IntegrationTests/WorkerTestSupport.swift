import Foundation
import Synchronization
import VeneerHost
import WorkerControlProtocol

/// A small raw-socket client of a worker's control socket: what veneerd speaks, spelled out, so
/// the tests see the wire protocol itself.
final class WorkerClient {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var nextID: UInt64 = 1

    init(socket path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw TestFailure("socket path too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard status == 0 else {
            close(fd)
            throw TestFailure("connect \(path): errno \(errno)")
        }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send: errno \(errno)") }
            done += n
        }
    }

    /// Whatever arrives within `timeout` seconds (at least one read's worth if any), nil at end of stream.
    func receive(timeout: Double) throws -> [UInt8]? {
        if !buffer.isEmpty { defer { buffer = [] }; return buffer }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, Int32(timeout * 1000)) > 0 else { return [] }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return nil }
        return Array(chunk[0..<n])
    }

    /// The next line (without its newline), or nil at end of stream or after `timeout`.
    func readLine(timeout: Double = 30) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return nil }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return nil }
            buffer += chunk[0..<n]
        }
    }

    func request(_ op: WorkerRequest.Op, device: String? = nil, body: String? = nil) throws -> WorkerResponse {
        let id = nextID
        nextID += 1
        return try send(WorkerRequest(id: id, op: op, device: device, body: body))
    }

    func send(_ request: WorkerRequest) throws -> WorkerResponse {
        try send(Array(try JSONEncoder().encode(request)) + [0x0A])
        return try response()
    }

    func response(timeout: Double = 40) throws -> WorkerResponse {
        guard let line = try readLine(timeout: timeout) else { throw TestFailure("no response line") }
        return try JSONDecoder().decode(WorkerResponse.self, from: Data(line.utf8))
    }
}

/// A `veneer run --control-dir` worker in a temporary directory.
final class WorkerProcess {
    let process = Process()
    let directory: String
    let controlDirectory: String
    let stderrPath: String

    var socketPath: String { controlDirectory + "/" + WorkerControl.socketName }
    var pid: Int32 { process.processIdentifier }

    /// Starts the worker on `config` (a path) and waits until its socket answers `hello`.
    init(config: String, logLevel: String = "info", wrapper: [String] = []) throws {
        try VeneerProcess.buildExamples()
        directory = (config as NSString).deletingLastPathComponent
        controlDirectory = directory + "/run"
        stderrPath = directory + "/worker.log"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let arguments = ["run", config, "--control-dir", controlDirectory, "--log-level", logLevel]
        if let tool = wrapper.first {
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = Array(wrapper.dropFirst()) + [VeneerProcess.executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: VeneerProcess.executable)
            process.arguments = arguments
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && process.isRunning {
            if let client = try? WorkerClient(socket: socketPath), (try? client.request(.hello))?.ok == true { return }
            usleep(20_000)
        }
        throw TestFailure("the worker did not serve \(socketPath): \(log)")
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    var log: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func client() throws -> WorkerClient { try WorkerClient(socket: socketPath) }

    /// Waits for the process to end; its status, or nil if it did not within `timeout`.
    func waitForExit(timeout: Double = 30) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        guard !process.isRunning else { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func exitRecord() throws -> WorkerExitRecord {
        let data = try Data(contentsOf: URL(fileURLWithPath: controlDirectory + "/" + WorkerControl.exitRecordName))
        return try JSONDecoder().decode(WorkerExitRecord.self, from: data)
    }

    /// Polls `info` until the VM is in `state`.
    func waitFor(_ state: WorkerState, timeout: Double = 30) throws -> WorkerInfo {
        let client = try client()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let info = try client.request(.info).info, info.state == state { return info }
            usleep(20_000)
        }
        throw TestFailure("the VM did not reach \(state.rawValue): \(log)")
    }

    /// The counting guest's config (examples/counter.toml, with its image path made absolute).
    static func counterConfig(extra: String = "") throws -> String {
        let text = try String(contentsOfFile: VeneerProcess.repoRoot + "/examples/counter.toml", encoding: .utf8)
            .replacingOccurrences(of: "\"guests/build/counter.bin\"", with: "\"{root}/examples/guests/build/counter.bin\"")
        return try VeneerProcess.config(text + extra)
    }
}

/// A console stream: the ring first, then live output, parsed into the counting guest's lines.
final class ConsoleStream {
    let client: WorkerClient
    private(set) var text = ""

    init(_ worker: WorkerProcess) throws {
        client = try worker.client()
        let response = try client.request(.console)
        guard response.ok else { throw TestFailure("console refused: \(String(describing: response.error))") }
    }

    /// Reads for up to `timeout` seconds or until `until` holds for the text so far.
    @discardableResult
    func read(timeout: Double, until: (String) -> Bool = { _ in false }) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && !until(text) {
            guard let bytes = try client.receive(timeout: min(0.1, max(deadline.timeIntervalSinceNow, 0.001))) else { break }
            text += String(decoding: bytes, as: UTF8.self)
        }
        return text
    }

    /// Everything that arrives within `seconds` (the stream is drained for exactly that long).
    func drain(for seconds: Double) throws -> String {
        let before = text.count
        try read(timeout: seconds)
        return String(text.dropFirst(before))
    }

    /// The counting guest's report lines: (count, tick, pm).
    var reports: [(count: UInt64, tick: UInt64, pm: UInt64)] {
        // Complete lines only: the last one may still be arriving.
        text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 6, f[0] == "count", f[2] == "tick", f[4] == "pm",
                  let c = UInt64(f[1]), let t = UInt64(f[3]), let p = UInt64(f[5]) else { return nil }
            return (c, t, p)
        }
    }
}
