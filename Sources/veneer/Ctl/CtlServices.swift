import ArgumentParser
import Foundation
import VeneerManagement

/// The KVP integration service: `kvp NAME get KEY [--pool P] | set KEY VALUE | delete KEY | list [--pool P]`.
struct CtlKVP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvp",
        abstract: "Read and write the guest's key-value pairs (the KVP integration service).",
        usage: "veneer ctl kvp NAME get KEY [--pool P] | set KEY VALUE | delete KEY | list [--pool P]")

    enum Action: String, ExpressibleByArgument, CaseIterable {
        case get, set, delete, list
        var operands: Int {
            switch self {
            case .get, .delete: 1
            case .set: 2
            case .list: 0
            }
        }
    }

    @OptionGroup var vm: VMNameArgument
    @Argument(help: "get, set, delete or list.") var action: Action
    @Argument(help: "KEY (get, delete) or KEY VALUE (set).") var operands: [String] = []
    @Option(help: "The pool read by get and list: external (default; what set writes), guest, auto, auto-external, auto-internal.")
    var pool: String?
    @OptionGroup var options: CtlOptions

    func validate() throws {
        guard operands.count == action.operands else {
            throw ValidationError("kvp \(action.rawValue) takes \(["no operands", "KEY", "KEY VALUE"][action.operands]), got \(operands.count) operand(s)")
        }
        if pool != nil, action == .set || action == .delete {
            throw ValidationError("--pool applies to get and list only: set and delete use the host's pool (external)")
        }
    }

    struct Items: Decodable {
        struct Item: Decodable {
            var key: String
            var value: String
        }
        var items: [Item]
    }

    struct Value: Codable {
        var value: String
    }

    func run() throws {
        let (vm, action, operands, pool, options) = (vm, action, operands, pool, options)
        let poolQuery = pool.map { [("pool", $0)] } ?? []
        try runToCompletion {
            try await VeneerdClient.with(socket: options.socketPath) { client in
                switch action {
                case .list:
                    let reply = try await client.send(.GET, "\(vm.path)/kvp", query: poolQuery)
                    if options.json { return emitJSON(reply) }
                    let items = try client.decode(Items.self, reply, what: "kvp list").items
                    emit(CtlFormat.table(["KEY", "VALUE"], items.map { [$0.key, $0.value] }))
                case .get:
                    let reply = try await client.send(.GET, "\(vm.path)/kvp/\(VeneerdClient.segment(operands[0]))", query: poolQuery)
                    if options.json { return emitJSON(reply) }
                    emit(try client.decode(Value.self, reply, what: "kvp get").value + "\n")
                case .set:
                    let body = try VeneerdClient.encode(Value(value: operands[1]))
                    emitJSON(try await client.send(.PUT, "\(vm.path)/kvp/\(VeneerdClient.segment(operands[0]))", json: body))
                case .delete:
                    emitJSON(try await client.send(.DELETE, "\(vm.path)/kvp/\(VeneerdClient.segment(operands[0]))"))
                }
            }
        }
    }
}

/// The file-copy integration service: a host file into the guest.
struct CtlCopyFile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy-file",
        abstract: "Copy a host file into the guest (the file copy integration service; at most 256 MiB).")

    /// veneerd's upload limit.
    static let maxBytes = 256 << 20

    @OptionGroup var vm: VMNameArgument
    @Argument(help: "The host file to send.") var source: String
    @Argument(help: "The absolute path in the guest to write.") var destination: String
    @Flag(help: "Replace the guest file if it exists.") var overwrite = false
    @Flag(name: .customLong("create-path"), help: "Create the destination's missing directories.") var createPath = false
    @OptionGroup var options: CtlOptions

    struct Result: Decodable {
        var bytes: Int
    }

    func run() throws {
        let (vm, source, destination, overwrite, createPath, options) = (vm, source, destination, overwrite, createPath, options)
        try runToCompletion {
            let bytes = try Self.read(source)
            try await VeneerdClient.with(socket: options.socketPath) { client in
                let reply = try await client.send(.POST, "\(vm.path)/files",
                                                  query: [("destination", destination), ("overwrite", "\(overwrite)"), ("createPath", "\(createPath)")],
                                                  octets: bytes)
                if options.json { return emitJSON(reply) }
                let result = try client.decode(Result.self, reply, what: "copy-file")
                emit("copied \(result.bytes) bytes to \(vm.name):\(destination)\n")
            }
        }
    }

    static func read(_ path: String) throws(CtlFailure) -> [UInt8] {
        Array(try LocalFile.read(path, limit: maxBytes, what: "file to copy"))
    }
}

/// Any device management request (ABI 1.8 `control`): the device's JSON result.
struct CtlRequest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Send a management request to a device and print its JSON result, e.g. request vm1 heartbeat '{\"op\":\"status\"}'.")

    @OptionGroup var vm: VMNameArgument
    @Argument(help: "The device's id in the VM config.") var device: String
    @Argument(help: "The request: a JSON object with \"op\".") var body: String
    @OptionGroup var options: CtlOptions

    func validate() throws {
        guard (try? JSONSerialization.jsonObject(with: Data(body.utf8))) is [String: Any] else {
            throw ValidationError("the request must be a JSON object, e.g. '{\"op\":\"status\"}'")
        }
    }

    func run() throws {
        let (vm, device, body, options) = (vm, device, body, options)
        try runToCompletion {
            try await VeneerdClient.with(socket: options.socketPath) { client in
                let reply = try await client.send(.POST, "\(vm.path)/devices/\(VeneerdClient.segment(device))/requests", json: Array(body.utf8))
                emitJSON(reply)
            }
        }
    }
}
