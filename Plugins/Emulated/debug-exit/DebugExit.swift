import VeneerPluginKit

/// A test device: a guest write of value v to its port ends the VM with exit status v, or with
/// (v << 1) | 1 in `qemu` mode, the convention of QEMU's isa-debug-exit that test kernels use.
/// Reads return all ones, as from an absent ISA port.
final class DebugExit: VeneerDevice {
    enum Encoding: String {
        case plain, qemu
    }

    let host: HostServices
    let encoding: Encoding

    init(host: HostServices, port: UInt16, width: UInt32, encoding: Encoding) throws(PluginError) {
        self.host = host
        self.encoding = encoding
        try host.registerPortIO(region: 0, port: port, length: width)
    }

    func reset() {}

    func io(_ access: IOAccess, data: inout UInt64) {
        guard access.isWrite else { return }
        let value = Int32(truncatingIfNeeded: data & access.mask)
        let status: Int32 = switch encoding {
        case .plain: value
        case .qemu: (value << 1) | 1
        }
        host.requestStop(.exit(status: status))
    }

    func save(to state: inout StateWriter) {}

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        try state.finish()
    }

    static let definition = PluginDefinition(
        name: "debug-exit",
        version: "1.0.0",
        summary: "ends the VM with the status the guest writes to its port (test kernels)",
        parameters: [
            ParameterSpec("port", .int(min: 0, max: 0xffff), default: "0xf4", doc: "I/O port the guest writes its status to"),
            ParameterSpec("width", .intChoice([1, 2, 4]), default: "1", doc: "number of ports claimed (1, 2 or 4)"),
            ParameterSpec("encoding", .choice(["plain", "qemu"]), default: "plain",
                          doc: "plain: exit status v; qemu: (v << 1) | 1 like QEMU's isa-debug-exit"),
        ]
    ) { host, params, _ throws(PluginError) in
        let port = params.int("port"), width = params.int("width")
        guard port + width <= 0x10000 else { throw PluginError("ports \(port)+\(width) run past 0xffff") }
        return try DebugExit(
            host: host, port: UInt16(port), width: UInt32(width),
            encoding: Encoding(rawValue: params.string("encoding")) ?? .plain)
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: DebugExit.definition) }
