import ArgumentParser
import Foundation
import VeneerManagement

/// VM names as the API's path segments.
struct VMNameArgument: ParsableArguments {
    @Argument(help: "The VM's name.") var name: String
    var path: String { "/v1/vms/\(VeneerdClient.segment(name))" }
}

struct CtlDefine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "define",
        abstract: "Define a VM from its config file (validated as `veneer check` does); it starts Off.")

    @Argument(help: "The VM config (TOML); its relative paths resolve against the file's directory.") var config: String
    @Option(help: "The VM's name (default: the config's `name`; when both are given they must agree).") var name: String?
    @Option(help: "Restart policy: never, on-failure or always.") var restart: RestartPolicy.Mode?
    @Option(name: .customLong("restart-backoff-ms"), help: "First restart delay in ms (doubles per consecutive restart).") var backoffMs: Int?
    @OptionGroup var options: CtlOptions

    func run() throws {
        let (config, name, options) = (config, name, options)
        let policy = restart.map { mode in
            var policy = RestartPolicy(mode: mode)
            if let backoffMs { policy.initialBackoffMs = backoffMs }
            return policy
        }
        try runToCompletion {
            let definition = try Self.definition(configPath: config, name: name, restartPolicy: policy)
            try await VeneerdClient.with(socket: options.socketPath) { client in
                let reply = try await client.send(.POST, "/v1/vms", json: VeneerdClient.encode(definition))
                if options.json { return emitJSON(reply) }
                let vm = try client.decode(VMDetails.self, reply, what: "define")
                emit("defined VM '\(vm.summary.name)' (\(vm.summary.state.rawValue))\n")
            }
        }
    }

    /// Reads the config (bounded) and names its absolute directory for veneerd.
    static func definition(configPath: String, name: String?, restartPolicy: RestartPolicy?) throws(CtlFailure) -> VMDefinition {
        let url = URL(fileURLWithPath: configPath).standardizedFileURL
        let data = try LocalFile.read(url.path, limit: 1 << 20, what: "config")
        guard let text = String(data: data, encoding: .utf8) else {
            throw CtlFailure(.noInput, "\(configPath): not UTF-8 text")
        }
        return VMDefinition(name: name, config: text, directory: url.deletingLastPathComponent().path, restartPolicy: restartPolicy)
    }
}

extension RestartPolicy.Mode: ExpressibleByArgument {}

struct CtlList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the VMs: NAME STATE VCPUS MEMORY UPTIME PID.")
    @OptionGroup var options: CtlOptions

    func run() throws {
        let options = options
        try runToCompletion {
            try await VeneerdClient.with(socket: options.socketPath) { client in
                let reply = try await client.send(.GET, "/v1/vms")
                if options.json { return emitJSON(reply) }
                emit(CtlFormat.list(try client.decode([VMSummary].self, reply, what: "list")))
            }
        }
    }
}

struct CtlInfo: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Show a VM: state, figures, devices, how its last worker ended.")
    @OptionGroup var vm: VMNameArgument
    @OptionGroup var options: CtlOptions

    func run() throws {
        let (path, options) = (vm.path, options)
        try runToCompletion {
            try await VeneerdClient.with(socket: options.socketPath) { client in
                let reply = try await client.send(.GET, path)
                if options.json { return emitJSON(reply) }
                emit(CtlFormat.details(try client.decode(VMDetails.self, reply, what: "info")))
            }
        }
    }
}

/// start, stop, reset, pause, resume (and shutdown with its body): POST to the VM's operation and
/// print the state it is in now.
func runOperation(_ operation: String, vm: VMNameArgument, options: CtlOptions, body: [UInt8]? = nil) throws {
    let path = "\(vm.path)/\(operation)"
    try runToCompletion {
        try await VeneerdClient.with(socket: options.socketPath) { client in
            let reply = try await client.send(.POST, path, json: body)
            if options.json { return emitJSON(reply) }
            emit(CtlFormat.transition(try client.decode(VMDetails.self, reply, what: operation)))
        }
    }
}

struct CtlStart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a VM (Off or Failed): a new worker boots it.")
    @OptionGroup var vm: VMNameArgument
    @OptionGroup var options: CtlOptions
    func run() throws { try runOperation("start", vm: vm, options: options) }
}

struct CtlStop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Turn a VM off now (no guest involvement).")
    @OptionGroup var vm: VMNameArgument
    @OptionGroup var options: CtlOptions
    func run() throws { try runOperation("stop", vm: vm, options: options) }
}

struct CtlShutdown: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shutdown",
        abstract: "Ask the guest to shut down: the shutdown integration service, else the ACPI power button.")
    @OptionGroup var vm: VMNameArgument
    @Flag(help: "Ask the guest to shut down without waiting for its applications (shutdown service only).") var force = false
    @Option(help: "Why, as the guest's shutdown service reports it.") var reason: String?
    @OptionGroup var options: CtlOptions

    struct Body: Encodable {
        var force: Bool
        var reason: String?
    }

    func run() throws {
        try runOperation("shutdown", vm: vm, options: options, body: VeneerdClient.encode(Body(force: force, reason: reason)))
    }
}

struct CtlReset: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reset", abstract: "Reset a running VM (as its reset button would).")
    @OptionGroup var vm: VMNameArgument
    @OptionGroup var options: CtlOptions
    func run() throws { try runOperation("reset", vm: vm, options: options) }
}

struct CtlPause: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Pause a VM: every vCPU stops, device timers freeze.")
    @OptionGroup var vm: VMNameArgument
    @OptionGroup var options: CtlOptions
    func run() throws { try runOperation("pause", vm: vm, options: options) }
}

struct CtlResume: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a paused VM.")
    @OptionGroup var vm: VMNameArgument
    @OptionGroup var options: CtlOptions
    func run() throws { try runOperation("resume", vm: vm, options: options) }
}

struct CtlDelete: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a VM that is Off or Failed, with its state directory.")
    @OptionGroup var vm: VMNameArgument
    @OptionGroup var options: CtlOptions

    func run() throws {
        let (vm, options) = (vm, options)
        try runToCompletion {
            try await VeneerdClient.with(socket: options.socketPath) { client in
                let reply = try await client.send(.DELETE, vm.path)
                if options.json { return emitJSON(reply) }
                emit("deleted VM '\(vm.name)'\n")
            }
        }
    }
}
