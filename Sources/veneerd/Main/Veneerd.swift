#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import VeneerManagement
import VeneerdAPI

/// The management service (Hyper-V's VMMS): keeps VM definitions under a state directory, runs
/// one worker process per VM and serves the HTTP API on a UNIX socket. Runs in the foreground
/// until SIGTERM or SIGINT; workers keep running when it stops, and a new veneerd re-attaches.
@main
struct Veneerd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "veneerd",
        abstract: "Veneer's management service: VM definitions, one worker per VM, and a JSON API on a UNIX socket."
    )

    @Option(name: .customLong("state-dir"), help: "Directory holding VM definitions and state (created 0700 if missing).")
    var stateDirectory: String

    @Option(name: .customLong("socket"), help: "The API socket (default: STATE-DIR/veneerd.sock).")
    var socketPath: String?

    @Option(name: .customLong("socket-group"), help: "Group allowed to connect: the socket becomes 0660 owned by it (default: owner only, 0600).")
    var socketGroup: String?

    @Option(name: .customLong("plugin-path"), help: "Directory searched for device plugins (repeatable); workers get the same list.")
    var pluginPaths: [String] = []

    @Option(name: .customLong("worker"), help: "The `veneer` executable that runs each VM (default: `veneer` beside veneerd).")
    var workerExecutable: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level: '\(logLevel)' is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "veneerd")
        logger.logLevel = level

        // Everything veneerd creates (the socket before it is chmod-ed, uploads, state) is the owner's alone.
        umask(0o077)
        let state = Self.absolute(stateDirectory)
        if mkdir(state, 0o700) != 0 && errno != EEXIST {
            throw StartupError("--state-dir: cannot create \(state): \(String(cString: strerror(errno)))")
        }
        let socket = Self.absolute(socketPath ?? "\(state)/veneerd.sock")
        let group = try socketGroup.map { name in
            do { return try SocketFile.groupID(named: name) } catch { throw ValidationError("--socket-group: \(error)") }
        }
        let worker = workerExecutable.map(Self.absolute) ?? Self.besideSelf("veneer")

        // Refuse before touching any VM when another veneerd serves this socket.
        do {
            try SocketFile.prepare(socket)
        } catch {
            throw StartupError("\(error)")
        }

        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let manager: VMSupervisor
        do {
            manager = try await VMSupervisor(stateDirectory: state, workerExecutable: worker,
                                             pluginSearchPaths: pluginPaths.map(Self.absolute), logger: logger)
        } catch {
            throw StartupError("cannot manage \(state): \(error)")
        }
        let api = VeneerdAPI(manager: manager, stateDirectory: state, daemonMetrics: registry, logger: logger)
        let server = APIServer(socketPath: socket, socketGroup: group)
        let application = try Self.application(server, api, logger)
        // Hummingbird's service group stops gracefully on SIGTERM and SIGINT; workers are separate
        // sessions and keep running.
        try await application.runService()
        unlink(socket)
        logger.info("veneerd stopped; workers keep running")
    }

    static func application(_ server: APIServer, _ api: VeneerdAPI, _ logger: Logger) throws -> some ApplicationProtocol {
        do {
            return try server.makeApplication(api: api, logger: logger)
        } catch {
            throw StartupError("\(error)")
        }
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }

    /// `name` in the directory of this executable (where `swift build` puts `veneer` too).
    static func besideSelf(_ name: String) -> String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (absolute(me) as NSString).deletingLastPathComponent + "/" + name
    }
}

/// A failure to start serving (not a usage error): printed as one line, exit status 1.
struct StartupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
