import ArgumentParser
import VeneerHost
#if canImport(Glibc)
import Glibc
#endif

@main
struct Veneer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "veneer",
        abstract: "A Hyper-V-style virtual machine monitor for Linux/KVM.",
        subcommands: [Run.self, Check.self, Plugins.self]
    )

    /// ArgumentParser's own handling, except that a command-line mistake is one line
    /// (`veneer: ...`) with status 64 (EX_USAGE) rather than a usage screen.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                let message = self.message(for: error).split(whereSeparator: \.isNewline).joined(separator: "; ")
                writeAll(2, "veneer: \(message) (see veneer --help)\n")
                Glibc.exit(SetupExitStatus.usage)
            }
            exit(withError: error)
        }
    }
}

/// The diagnostics `--log-level` accepts; any other word is a usage error.
enum LogLevelOption: String, ExpressibleByArgument, CaseIterable {
    case error, warning, info, debug

    var level: Logger.Level {
        switch self {
        case .error: .error
        case .warning: .warning
        case .info: .info
        case .debug: .debug
        }
    }
}

struct PluginPathOption: ParsableArguments {
    @Option(name: .customLong("plugin-path"), help: "Directory searched for plugins before the default path (repeatable).")
    var directories: [String] = []

    var registry: PluginRegistry {
        var registry = PluginRegistry.standard()
        registry.searchPaths = directories + registry.searchPaths
        return registry
    }
}

/// Prints `veneer: <message>` on stderr and exits with `status` (`SetupExitStatus`). A setup
/// error is one line whatever the config put into it; a vCPU fault's register report below its
/// first line is kept (`singleLine: false`).
func fail(_ message: String, status: Int32, singleLine: Bool = true) -> ExitCode {
    writeAll(2, "veneer: \(singleLine ? oneLine(message) : message)\n")
    return ExitCode(status)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Boot a VM from its config file; exit with the guest's status (debug-exit) or 0 on power-off.")

    @Argument(help: "The VM config (TOML).") var config: String
    @OptionGroup var plugins: PluginPathOption
    @Option(help: "Diagnostics to show: error, warning, info or debug.") var logLevel: LogLevelOption = .warning

    func run() throws {
        let level = logLevel.level
        let logger = Logger(threshold: level)
        // A console whose reader went away must not kill the VM: writes fail with EPIPE instead.
        signal(SIGPIPE, SIG_IGN)
        let vm: VMConfig
        do { vm = try ConfigParser.load(path: config) } catch { throw fail("\(error)", status: error.exitStatus) }
        var exit: MachineExit
        repeat {
            // A reset with on_reset = restart boots a fresh machine from the same config: a cold
            // reset, with every device recreated from its parameters.
            let machine: Machine
            do { machine = try Machine(config: vm, registry: plugins.registry, logger: logger) } catch {
                throw fail("\(error)", status: error.exitStatus)
            }
            exit = machine.run()
            if exit == .reset, vm.onReset == .restart { logger.log(.info, "vm", "guest requested a reset: restarting") }
        } while exit == .reset && vm.onReset == .restart
        if exit.isFailure {
            throw fail(exit.description, status: exit.exitStatus, singleLine: false)
        }
        if exit.exitStatus != 0 || level >= .info {
            logger.log(exit.exitStatus == 0 ? .info : .warning, "vm", exit.description)
        }
        if exit.exitStatus != 0 { throw ExitCode(exit.exitStatus) }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a VM config and its devices' parameters against their plugins, without starting it.")

    @Argument(help: "The VM config (TOML).") var config: String
    @OptionGroup var plugins: PluginPathOption

    func run() throws {
        let vm: VMConfig
        do { vm = try ConfigParser.load(path: config) } catch { throw fail("\(error)", status: error.exitStatus) }
        do {
            let devices = try DeviceResolver.resolve(vm, registry: plugins.registry)
            print("\(config): ok: VM '\(vm.name)', \(vm.memoryBytes >> 20) MiB, \(vm.vcpus) vCPU(s), \(vm.boot.summary)")
            for d in devices {
                let params = d.parameters.map { "\($0.name)=\(Self.text($0.value))" }.joined(separator: " ")
                print("  \(d.config.id): \(d.library.info.name) \(d.library.info.version)  \(params)")
            }
        } catch {
            throw fail("\(error)", status: error.exitStatus)
        }
    }

    static func text(_ v: ParameterValue.Value) -> String {
        switch v {
        case .bool(let b): "\(b)"
        case .int(let i): i >= 0 && i > 9 ? "0x" + String(i, radix: 16) : "\(i)"
        case .string(let s): "\"\(s)\""
        }
    }
}

struct Plugins: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the plugins in the search path, or describe one.")

    @Option(help: "Show one plugin's parameters.") var describe: String?
    @OptionGroup var plugins: PluginPathOption

    func run() throws {
        let registry = plugins.registry
        if let name = describe {
            let library: PluginLibrary
            do throws(PluginLoadError) {
                library = try PluginLibrary(path: name.contains("/") ? name : try registry.locate(name))
            } catch {
                throw fail(error.description, status: SetupExitStatus.plugin)
            }
            let info = library.info
            print("\(info.name) \(info.version) — \(info.summary)")
            print("  kind: \(info.kind.rawValue), ABI \(info.abiVersion), state version \(info.stateVersion)\(info.concurrent ? ", concurrent" : "")")
            print("  file: \(library.path)")
            print(info.parameters.isEmpty ? "  no parameters" : "  parameters:")
            for p in info.parameters {
                let def = p.defaultText.map { "default \($0)" } ?? "required"
                print("    \(p.name) (\(p.kind.typeName), \(def)): \(p.doc)")
            }
            return
        }
        let (found, problems) = registry.all()
        for library in found {
            let info = library.info
            print("\(info.name.padding(16)) \(info.version.padding(8)) \(info.kind.rawValue.padding(12)) \(info.summary)")
        }
        for problem in problems { writeAll(2, "veneer: \(problem)\n") }
        if found.isEmpty { writeAll(2, "veneer: no plugins in \(registry.searchPaths.joined(separator: ", "))\n") }
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}
