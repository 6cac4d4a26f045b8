import Foundation
import Synchronization
import VeneerHost

/// Runs the real `veneer` executable (built next to the test binary) the way a user would.
enum VeneerProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let kvmAvailable = KVMSystem.isAvailable()

    static var executable: String { (PluginRegistry.executableDirectory() ?? ".") + "/veneer" }

    private static let built = Mutex(false)

    /// Builds the test guests and the C example plugin once per test process.
    static func buildExamples() throws {
        try built.withLock { done in
            guard !done else { return }
            for dir in ["examples/guests", "examples/plugins/scratchpad"] {
                let r = try run("/usr/bin/make", ["-s", "-C", "\(repoRoot)/\(dir)"])
                guard r.status == 0 else { throw TestFailure("make -C \(dir) failed: \(r.stderr)") }
            }
            done = true
        }
    }

    static func veneer(_ arguments: [String], timeout: Double = 60) throws -> Result {
        try buildExamples()
        return try run(executable, arguments, timeout: timeout)
    }

    static func run(_ path: String, _ arguments: [String], timeout: Double = 120) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: repoRoot)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Drain both pipes while waiting so a chatty child never blocks on a full pipe.
        let outData = DataSink(), errData = DataSink()
        let group = DispatchGroup()
        for (pipe, sink) in [(out, outData), (err, errData)] {
            group.enter()
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                sink.data.withLock { $0 = data }
                group.leave()
            }
        }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            let grace = Date().addingTimeInterval(5)
            while process.isRunning && Date() < grace { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            throw TestFailure("\(path) \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
        }
        process.waitUntilExit()
        group.wait()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: outData.data.withLock { $0 }, as: UTF8.self),
                      stderr: String(decoding: errData.data.withLock { $0 }, as: UTF8.self))
    }

    /// A config file in a fresh temporary directory; `{root}` in the text becomes the repo root.
    static func config(_ text: String, name: String = "vm.toml") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("veneer-it-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try text.replacingOccurrences(of: "{root}", with: repoRoot).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

final class DataSink: Sendable {
    let data = Mutex(Data())
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension VeneerProcess {
    /// Starts a process without waiting for it (output discarded).
    static func start(_ path: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }
}
