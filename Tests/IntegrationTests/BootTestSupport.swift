import Foundation
@testable import VeneerHost

/// Booting the boot-protocol test kernels (examples/guests) through `Machine` with real KVM: the
/// shipped example config, with the UART's output sent to a temporary file the test reads back.
enum BootTestSupport {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The repository root: this file is Tests/IntegrationTests/BootTestSupport.swift.
    static let repoRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// `make -C examples/guests`, once per test process (make is a no-op when nothing changed).
    static let guestBuild: Result<Void, Failure> = {
        let directory = NSTemporaryDirectory() + "/veneer-make-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let log = directory + "/make.log"
            guard FileManager.default.createFile(atPath: log, contents: nil) else { throw Failure(description: "cannot create \(log)") }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["make", "-s", "-C", repoRoot + "/examples/guests"]
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            process.waitUntilExit()
            try handle.close()
            guard process.terminationStatus == 0 else {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw Failure(description: "make -C examples/guests failed (\(process.terminationStatus)):\n\(text)")
            }
            return .success(())
        } catch let error as Failure {
            return .failure(error)
        } catch {
            return .failure(Failure(description: "cannot run make -C examples/guests: \(error)"))
        }
    }()

    struct Boot {
        var exit: MachineExit
        var uart: String
        var lines: [String] { uart.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
    }

    /// examples/<name>.toml, parsed as `veneer run` would, with the serial16550 device writing to
    /// `uartOutput` instead of stdout.
    static func exampleConfig(_ name: String, uartOutput: String) throws -> VMConfig {
        try guestBuild.get()
        var config = try ConfigParser.load(path: "\(repoRoot)/examples/\(name).toml")
        guard let uart = config.devices.firstIndex(where: { $0.plugin == "serial16550" }) else {
            throw Failure(description: "examples/\(name).toml has no serial16550 device")
        }
        config.devices[uart].parameters["output"] = .string(uartOutput)
        return config
    }

    /// Builds the machine, runs it to its end (or stops it after `timeout` seconds: a hung guest
    /// must fail the test, not hang it) and returns why it stopped and what the UART printed.
    static func boot(_ config: VMConfig, uartOutput: String, timeout: Double = 30) throws -> Boot {
        let machine = try Machine(config: config, registry: .standard(), logger: Logger(threshold: .error))
        let stop = machine.services.stop
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
            stop.request(.fault("timed out after \(timeout) s"))
        }
        let exit = machine.run()
        let uart = (try? String(contentsOfFile: uartOutput, encoding: .utf8)) ?? ""
        return Boot(exit: exit, uart: uart)
    }

    /// A scratch directory removed when the test lets go of it.
    final class Scratch {
        let path: String

        init() throws {
            path = NSTemporaryDirectory() + "/veneer-boot-it-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }
    }
}
