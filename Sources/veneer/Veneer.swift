import ArgumentParser
import CKVM
import VeneerHost
#if canImport(Glibc)
import Glibc
#endif

@main
struct Veneer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "veneer",
        abstract: "A Hyper-V-style virtual machine monitor for Linux/KVM.",
        subcommands: [Run.self, Check.self, Plugins.self, CPUFeatures.self, Disk.self, Switch.self, Ctl.self]
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

/// Where a config's relative paths resolve when the file lives elsewhere (veneerd keeps its copy
/// of a config in its state directory but resolves it against the directory it was defined from).
struct BaseDirectoryOption: ParsableArguments {
    @Option(name: .customLong("base-directory"), help: "Resolve the config's relative paths against this directory instead of the config file's.")
    var path: String?
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
    @OptionGroup var base: BaseDirectoryOption
    @OptionGroup var plugins: PluginPathOption
    @Option(help: "Diagnostics to show: error, warning, info or debug.") var logLevel: LogLevelOption = .warning
    @Option(name: .customLong("control-dir"),
            help: "Run as a managed worker: serve the control socket, pid file and exit record in this directory (created 0700 if missing); the guest console's stdout/stdin endpoints are served on the socket.")
    var controlDirectory: String?

    func run() throws {
        let level = logLevel.level
        let logger = Logger(threshold: level)
        // A console whose reader went away must not kill the VM: writes fail with EPIPE instead.
        signal(SIGPIPE, SIG_IGN)
        // A plugin crashing in a callback: one line naming device, plugin and callback, status 71.
        PluginCrashGuard.install(program: "veneer")
        let vm: VMConfig
        do { vm = try ConfigParser.load(path: config, baseDirectory: base.path) } catch { throw fail("\(error)", status: error.exitStatus) }
        warnAboutIgnoredCPUMasks(vm.cpu, logger: logger)
        if let controlDirectory {
            let end = Worker.run(config: vm, controlDirectory: controlDirectory, registry: plugins.registry, logger: logger,
                                 exitStatus: { $0.exitStatus })
            switch end {
            case .setup(let message, let status):
                throw fail(message, status: status)
            case .machine(let exit):
                return try finish(exit, level: level, logger: logger)
            }
        }
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
        try finish(exit, level: level, logger: logger)
    }

    /// Reports how the VM ended and exits with its status, as `veneer run` documents it.
    private func finish(_ exit: MachineExit, level: Logger.Level, logger: Logger) throws {
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
    @OptionGroup var base: BaseDirectoryOption
    @OptionGroup var plugins: PluginPathOption

    func run() throws {
        PluginCrashGuard.install(program: "veneer")  // loading runs plugin code too
        let vm: VMConfig
        do { vm = try ConfigParser.load(path: config, baseDirectory: base.path) } catch { throw fail("\(error)", status: error.exitStatus) }
        do {
            let devices = try DeviceResolver.resolve(vm, registry: plugins.registry)
            print("\(config): ok: VM '\(vm.name)', \(vm.memoryBytes >> 20) MiB, \(vm.vcpus) vCPU(s), \(vm.boot.summary)")
            for d in devices {
                let params = d.parameters.map { "\($0.name)=\(Self.text($0.value))" }.joined(separator: " ")
                let note = IntegrationServices.isDefault(d.config) ? "  (integration service, on by default: [integration] \(d.config.id) = false turns it off)" : ""
                print("  \(d.config.id): \(d.library.info.name) \(d.library.info.version)  \(params)\(note)")
            }
            for line in cpuReport(vm.cpu) { print("  " + line) }
        } catch {
            throw fail("\(error)", status: error.exitStatus)
        }
    }

    static func text(_ v: ParameterValue.Value) -> String {
        switch v {
        case .bool(let b): "\(b)"
        case .int(let i): i >= 0 && i > 9 ? "0x" + String(i, radix: 16) : "\(i)"
        case .string(let s): "\"\(s)\""
        case .group(let tables):
            "[" + tables.map { "{" + $0.map { "\($0.name)=\(text($0.value))" }.joined(separator: " ") + "}" }.joined(separator: ", ") + "]"
        }
    }
}

/// What `veneer check` says about the `[cpu]` section: what it hides, and what this host's KVM
/// really hides (measured by a probe guest, never assumed).
func cpuReport(_ model: CPUModel) -> [String] {
    let hidden = model.hiddenFeatures
    guard !hidden.isEmpty else { return ["cpu: template host, no features hidden"] }
    var lines = ["cpu: template \(model.template.rawValue), \(hidden.count) features hidden"]
    guard KVMSystem.isAvailable() else {
        return lines + ["  cannot tell which masks this host honours: /dev/kvm is not available"]
    }
    let report: CPUIDProbe.Report
    do { report = try CPUIDProbe.run(model) } catch { return lines + ["  cannot tell which masks this host honours: \(error)"] }
    func names(_ features: [CPUFeature]) -> String { features.map(\.name).joined(separator: " ") }
    if !report.honoured.isEmpty { lines.append("  hidden from the guest on this host: \(names(report.honoured))") }
    if !report.ignored.isEmpty {
        lines.append("  NOT hidden on this host (its KVM shows the guest the real CPUID bits): \(names(report.ignored))")
        lines.append("  hide these inside the guest instead (Linux: clearcpuid=...), or run on a host whose KVM applies them")
    }
    if !report.absentOnHost.isEmpty { lines.append("  not offered by this host anyway: \(names(report.absentOnHost))") }
    return lines
}

/// A run whose CPU masks the host ignores still runs, but the user hears about it once.
func warnAboutIgnoredCPUMasks(_ model: CPUModel, logger: Logger) {
    guard !model.hiddenFeatures.isEmpty, KVMSystem.isAvailable() else { return }
    do {
        let report = try CPUIDProbe.run(model)
        if !report.ignored.isEmpty {
            logger.log(.warning, "cpu", "this host's KVM does not hide \(report.ignored.map(\.name).joined(separator: " ")) "
                       + "from the guest although [cpu] asks for it (`veneer check` says more)")
        }
    } catch {
        logger.log(.warning, "cpu", "cannot tell which CPU masks this host honours: \(error)")
    }
}

struct CPUFeatures: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpu-features",
        abstract: "List the CPU features a [cpu] section can hide, which templates hide them, and whether this host has them.")

    func run() throws {
        var hostCPUID: [kvm_cpuid_entry2]?
        if KVMSystem.isAvailable() { hostCPUID = try? KVMSystem().supportedCPUID() }
        print("\("feature".padding(20)) \("leaf".padding(14)) \("host".padding(6)) hidden by templates")
        for f in CPUFeature.all {
            let leaf = "\(hex(f.leaf)).\(f.subleaf) \(f.register.rawValue)[\(f.bit)]"
            let host = hostCPUID.map { CPUModel.isSet(f, in: $0) ? "yes" : "no" } ?? "?"
            let templates = CPUTemplate.allCases.filter { $0.hiddenFeatures.contains(f) }.map(\.rawValue)
            let hiddenBy = f.isInstructionSet ? templates.joined(separator: " ") : "(platform feature: only `disable` hides it)"
            print("\(f.name.padding(20)) \(leaf.padding(14)) \(host.padding(6)) \(hiddenBy)")
        }
    }

    private func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }
}

struct Plugins: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the plugins in the search path, or describe one.")

    @Option(help: "Show one plugin's parameters.") var describe: String?
    @OptionGroup var plugins: PluginPathOption
    /// Internal: load the file --describe names and send its listing line to fd 3 (the listing
    /// runs each file this way, in a child, so a plugin crashing while loading ends only that).
    @Flag(help: .hidden) var probe = false

    /// --probe's status for a file that is not a Veneer plugin (no entry symbol): skipped.
    static let notAPlugin: Int32 = 3

    func run() throws {
        PluginCrashGuard.install(program: "veneer")  // loading runs plugin code too
        let registry = plugins.registry
        if let name = describe {
            let library: PluginLibrary
            do throws(PluginLoadError) {
                library = try PluginLibrary(path: name.contains("/") ? name : try registry.locate(name))
            } catch {
                if probe, case .missingEntry = error { throw ExitCode(Self.notAPlugin) }
                throw fail(error.description, status: SetupExitStatus.plugin)
            }
            let info = library.info
            if probe {
                let line = Array("\(info.name)\t\(Self.line(info))\n".utf8)
                _ = line.withUnsafeBytes { write(ChildProcess.resultFD, $0.baseAddress, $0.count) }
                return
            }
            print("\(info.name) \(info.version) — \(info.summary)")
            print("  kind: \(info.kind.rawValue), ABI \(info.abiVersion), state version \(info.stateVersion)\(info.concurrent ? ", concurrent" : "")")
            print("  file: \(library.path)")
            print(info.parameters.isEmpty ? "  no parameters" : "  parameters:")
            for line in Self.describe(info.parameters) { print(line) }
            return
        }
        guard let executable = ChildProcess.ownExecutable() else { throw fail("cannot find this executable (/proc/self/exe)", status: SetupExitStatus.hostUnavailable) }
        var seen = Set<String>()
        for path in registry.candidates() {
            let outcome: ChildProcess.Outcome
            do { outcome = try ChildProcess.run(executable, ["plugins", "--probe", "--describe", path], timeout: 60) } catch {
                writeAll(2, "veneer: \(error)\n")
                continue
            }
            // What the plugin printed while loading is not part of the listing.
            if !outcome.stdout.isEmpty { writeAll(2, String(decoding: outcome.stdout, as: UTF8.self)) }
            switch outcome.termination {
            case .exited(0):
                let fields = outcome.result.split(separator: "\n").first?.split(separator: "\t", maxSplits: 1) ?? []
                guard fields.count == 2 else { continue }
                if seen.insert(String(fields[0])).inserted { print(fields[1]) }
            case .exited(Self.notAPlugin):
                continue
            case .exited(SetupExitStatus.plugin), .exited(PluginCrashGuard.exitStatus):
                writeAll(2, outcome.stderr)  // one line naming the file and the reason
            case .exited(let status):
                writeAll(2, "veneer: plugin \(path) could not be listed (exit status \(status))\n")
            case .signalled(let signal):
                writeAll(2, "veneer: plugin \(path) crashed while loading (\(ChildProcess.signalName(signal)))\n")
            case .timedOut:
                writeAll(2, "veneer: plugin \(path) did not finish loading within 60 s\n")
            }
        }
        if seen.isEmpty { writeAll(2, "veneer: no plugins in \(registry.searchPaths.joined(separator: ", "))\n") }
    }

    /// One line per parameter; a group's members follow it, indented, as `[[device.NAME]]`
    /// tables spell them.
    static func describe(_ parameters: [ParameterSchema], indent: String = "    ") -> [String] {
        parameters.flatMap { p -> [String] in
            if case .group(_, _, let members) = p.kind {
                return ["\(indent)\(p.name) (\(p.kind.typeName), [[device.\(p.name)]]): \(p.doc)"]
                    + describe(members, indent: indent + "  ")
            }
            let def = p.defaultText.map { "default \($0)" } ?? "required"
            return ["\(indent)\(p.name) (\(p.kind.typeName), \(def)): \(p.doc)"]
        }
    }

    static func line(_ info: PluginInfo) -> String {
        "\(info.name.padding(16)) \(info.version.padding(8)) \(info.kind.rawValue.padding(12)) \(info.summary)"
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}
