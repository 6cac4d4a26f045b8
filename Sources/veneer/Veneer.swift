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

/// Prints `veneer: <message>` on stderr and exits with `status`.
func fail(_ message: String, status: Int32 = 1) -> ExitCode {
    writeAll(2, "veneer: \(message)\n")
    return ExitCode(status)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Boot a VM from its config file; exit with the guest's status (debug-exit) or 0 on power-off.")

    @Argument(help: "The VM config (TOML).") var config: String
    @OptionGroup var plugins: PluginPathOption
    @Option(help: "Diagnostics to show: error, warning, info or debug.") var logLevel: String = "warning"

    func run() throws {
        let level: Logger.Level = switch logLevel {
        case "error": .error
        case "info": .info
        case "debug": .debug
        default: .warning
        }
        let logger = Logger(threshold: level)
        // A console whose reader went away must not kill the VM: writes fail with EPIPE instead.
        signal(SIGPIPE, SIG_IGN)
        // A plugin crashing in a callback: one line naming device, plugin and callback, status 71.
        PluginCrashGuard.install(program: "veneer")
        let vm: VMConfig
        do { vm = try ConfigParser.load(path: config) } catch { throw fail("\(error)") }
        var exit: MachineExit
        repeat {
            // A reset with on_reset = restart boots a fresh machine from the same config: a cold
            // reset, with every device recreated from its parameters.
            let machine: Machine
            do { machine = try Machine(config: vm, registry: plugins.registry, logger: logger) } catch {
                throw fail("\(error)")
            }
            exit = machine.run()
            if exit == .reset, vm.onReset == .restart { logger.log(.info, "vm", "guest requested a reset: restarting") }
        } while exit == .reset && vm.onReset == .restart
        if exit.isFailure {
            throw fail(exit.description, status: exit.exitStatus)
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
        PluginCrashGuard.install(program: "veneer")  // loading runs plugin code too
        do {
            let vm = try ConfigParser.load(path: config)
            let devices = try DeviceResolver.resolve(vm, registry: plugins.registry)
            print("\(config): ok: VM '\(vm.name)', \(vm.memoryBytes >> 20) MiB, \(vm.vcpus) vCPU(s), \(vm.boot.summary)")
            for d in devices {
                let params = d.parameters.map { "\($0.name)=\(Self.text($0.value))" }.joined(separator: " ")
                print("  \(d.config.id): \(d.library.info.name) \(d.library.info.version)  \(params)")
            }
        } catch {
            throw fail("\(error)")
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
        PluginCrashGuard.install(program: "veneer")  // loading runs plugin code too
        let registry = plugins.registry
        if let name = describe {
            let library: PluginLibrary
            do throws(PluginLoadError) {
                library = try PluginLibrary(path: name.contains("/") ? name : try registry.locate(name))
            } catch {
                throw fail(error.description)
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
