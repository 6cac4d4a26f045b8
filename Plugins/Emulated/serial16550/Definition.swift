import VeneerPluginKit

extension Serial16550 {
    static let definition = PluginDefinition(
        name: "serial16550",
        version: "1.0.0",
        summary: "16550A UART (COM port) with 16-byte FIFOs, output to a host stream or file, input from stdin or a file/FIFO",
        stateVersion: 1,
        parameters: [
            ParameterSpec("port", .int(min: 0, max: 0xfff8), default: "0x3f8", doc: "first of the eight I/O ports (COM1 0x3f8, COM2 0x2f8)"),
            ParameterSpec("irq", .int(min: 0, max: 23), default: "4", doc: "interrupt line (COM1 4, COM2 3)"),
            ParameterSpec("output", .path(words: ["stdout", "stderr", "none"]), default: "stdout",
                          doc: "where transmitted bytes go: stdout, stderr, none or a file path (created or truncated; relative to the config file)"),
            ParameterSpec("input", .path(words: ["stdin", "none"]), default: "none",
                          doc: "where received bytes come from: stdin, none or a path to a file or FIFO (relative to the config file)"),
        ]
    ) { host, params, _ throws(PluginError) in
        let port = params.int("port"), irq = params.int("irq")
        guard port >= 0, port + 8 <= 0x10000 else {
            throw PluginError("port \(port): the eight UART ports must end by 0xffff")
        }
        guard (0...23).contains(irq) else { throw PluginError("irq \(irq) is outside 0...23") }
        let output = try Endpoint.output(params.string("output"))
        let input: Endpoint?
        do throws(PluginError) {
            input = try Endpoint.input(params.string("input"))
        } catch {
            output?.close()
            throw error
        }
        do throws(PluginError) {
            return try Serial16550(host: host, port: UInt16(port), irq: UInt32(irq), output: output, input: input)
        } catch {
            output?.close()
            input?.close()
            throw error
        }
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: Serial16550.definition) }
