import VeneerPluginKit

extension PIT8254 {
    static let definition = PluginDefinition(
        name: "pit8254",
        version: "1.0.0",
        summary: "Intel 8254 interval timer: three counters at 1.193182 MHz, counter 0 on IRQ 0, counter 2 behind port 0x61",
        stateVersion: stateVersion,
        parameters: [
            ParameterSpec("port", .int(min: 0, max: 0xfffc), default: "0x40", doc: "first of the four PIT ports (counters 0-2, control word)"),
            ParameterSpec("irq", .int(min: 0, max: 23), default: "0", doc: "interrupt line counter 0's output drives"),
            ParameterSpec("speaker_port", .int(min: 0, max: 0xffff), default: "0x61",
                          doc: "system control port B (counter 2 gate, speaker, OUT2, refresh toggle); 0 leaves it unclaimed"),
        ]
    ) { host, params, _ throws(PluginError) in
        let port = params.int("port"), irq = params.int("irq"), speaker = params.int("speaker_port")
        guard port >= 0, port + 4 <= 0x10000 else { throw PluginError("port \(hex(port)): the four PIT ports must end by 0xffff") }
        guard (0...23).contains(irq) else { throw PluginError("irq \(irq) is outside 0...23") }
        guard (0...0xffff).contains(speaker) else { throw PluginError("speaker_port \(hex(speaker)) is outside 0...0xffff") }
        if speaker != 0, (port..<port + 4).contains(speaker) {
            throw PluginError("speaker_port \(hex(speaker)) lies inside the PIT ports \(hex(port))-\(hex(port + 3))")
        }
        return try PIT8254(
            host: host, port: UInt16(port), speakerPort: speaker == 0 ? nil : UInt16(speaker), irq: UInt32(irq))
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: PIT8254.definition) }
