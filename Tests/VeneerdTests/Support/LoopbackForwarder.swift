import Foundation

/// Fixtures/loopback_forward.py as a child process: a TCP port on 127.0.0.1 that forwards to
/// veneerd's UNIX socket, for clients that only speak TCP (schemathesis, the WebSocket client).
final class LoopbackForwarder: @unchecked Sendable {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/loopback_forward.py").path

    static var python: String? {
        ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? which("python3")
    }

    /// The first executable `name` on PATH.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    let port: Int
    private let process: Process
    private let input: Pipe

    init(socketPath: String) throws {
        guard let python = Self.python else { throw TestFailure("python3 is missing") }
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [Self.script, socketPath]
        input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        var line: [UInt8] = []
        while let byte = try output.fileHandleForReading.read(upToCount: 1)?.first, byte != 0x0A { line.append(byte) }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else {
            process.terminate()
            throw TestFailure("the forwarder did not report a port")
        }
        self.port = port
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { process.terminate() }
    }
}
