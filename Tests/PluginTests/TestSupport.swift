import Foundation
import VeneerHost

/// Building and running things the plugin tests need: the C example plugin, C fixture plugins
/// compiled on the fly, and the `veneer-plugin-test` executable.
enum TestSupport {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The repository root: this file is Tests/PluginTests/TestSupport.swift.
    static let repoRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static let includeDirectory = repoRoot + "/PluginSDK/include"

    /// Where `swift build` put the test binary, and with it the plugins and executables.
    static var productsDirectory: String { PluginRegistry.executableDirectory() ?? repoRoot + "/.build/debug" }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `executable` (a path, or a name looked up in PATH) and collects its output. Output goes
    /// to files rather than pipes, so no pipe can fill up while the process runs.
    static func run(_ executable: String, _ arguments: [String]) throws -> Output {
        let directory = try temporaryDirectory("run")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outPath = directory + "/stdout", errPath = directory + "/stderr"
        guard FileManager.default.createFile(atPath: outPath, contents: nil),
              FileManager.default.createFile(atPath: errPath, contents: nil)
        else { throw Failure(description: "cannot create output files in \(directory)") }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.contains("/") ? executable : "/usr/bin/env")
        process.arguments = executable.contains("/") ? arguments : [executable] + arguments
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Output(
            status: process.terminationStatus,
            stdout: try String(contentsOfFile: outPath, encoding: .utf8),
            stderr: try String(contentsOfFile: errPath, encoding: .utf8))
    }

    static func temporaryDirectory(_ purpose: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("veneer-\(purpose)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    /// `make -C examples/plugins/scratchpad`, once per process (tests run in parallel).
    static func scratchpad() throws -> String { try scratchpadBuild.get() }

    private static let scratchpadBuild: Result<String, Failure> = {
        let directory = repoRoot + "/examples/plugins/scratchpad"
        do {
            let result = try run("make", ["-s", "-C", directory])
            guard result.status == 0 else {
                return .failure(Failure(description: "make -C \(directory) failed (\(result.status)):\n\(result.stderr)"))
            }
        } catch {
            return .failure(Failure(description: "cannot run make: \(error)"))
        }
        return .success(directory + "/build/libscratchpad.so")
    }()

    /// Compiles `source` into a plugin of its own in a fresh directory (a path dlopen has never
    /// seen, as loaded libraries stay loaded) under the build products, and returns the .so's path.
    static func compilePlugin(_ source: String, defines: [String] = [], name: String = "fixture") throws -> String {
        let directory = productsDirectory + "/plugin-fixtures/\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let sourcePath = directory + "/\(name).c", library = directory + "/lib\(name).so"
        try source.write(toFile: sourcePath, atomically: true, encoding: .utf8)
        let result = try run(
            "cc", ["-shared", "-fPIC", "-O2", "-Wall", "-I", includeDirectory] + defines.map { "-D" + $0 }
                + ["-o", library, sourcePath])
        guard result.status == 0 else {
            throw Failure(description: "cc \(defines) failed (\(result.status)):\n\(result.stderr)")
        }
        return library
    }
}
