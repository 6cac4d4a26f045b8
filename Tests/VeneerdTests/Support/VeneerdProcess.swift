import Foundation

/// The real `veneerd` executable (built beside the test bundle) on a temporary state directory.
final class VeneerdProcess: @unchecked Sendable {
    static var buildDirectory: String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().path
    }

    static var executable: String { buildDirectory + "/veneerd" }

    let state: TemporaryDirectory
    let socketPath: String
    let process: Process
    let log: Pipe

    /// Starts veneerd and waits (up to 30 s) until its socket accepts connections.
    init(extraArguments: [String] = [], state: TemporaryDirectory? = nil) throws {
        self.state = try state ?? TemporaryDirectory()
        socketPath = self.state.path + "/veneerd.sock"
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = ["--state-dir", self.state.path, "--log-level", "info",
                             "--plugin-path", Self.buildDirectory] + extraArguments
        log = Pipe()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        for _ in 0..<300 {
            if !process.isRunning { break }
            if Self.accepts(socketPath) { return }
            usleep(100_000)
        }
        let output = stopAndCollect()
        throw TestFailure("veneerd did not start serving \(socketPath):\n\(output)")
    }

    static func accepts(_ path: String) -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }

    /// SIGTERM, wait for the exit, and the log.
    @discardableResult
    func stopAndCollect() -> String {
        if process.isRunning { process.terminate() }
        let data = log.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
