import VeneerPluginKit

extension I8042 {
    static let definition = PluginDefinition(
        name: "i8042",
        version: "1.0.0",
        summary: "8042 PS/2 keyboard controller with keyboard and mouse, A20 gate, system reset and port 0x92",
        stateVersion: 1,
        parameters: [
            ParameterSpec("irq_kbd", .int(min: 0, max: 23), default: "1", doc: "keyboard interrupt line (PC: 1)"),
            ParameterSpec("irq_aux", .int(min: 0, max: 23), default: "12", doc: "aux (mouse) interrupt line (PC: 12)"),
            ParameterSpec("reset_action", .choice(["reset", "poweroff"]), default: "reset",
                          doc: "what a system reset through the controller or port 0x92 asks the VM to do"),
            ParameterSpec("port92", .bool, default: "true",
                          doc: "also claim System Control Port A (0x92: fast A20 gate and fast reset)"),
            ParameterSpec("input", .path(words: ["none"]), default: "none",
                          doc: "none, or a file or FIFO (relative to the config file) of scancode bytes as the keyboard sends them (set 2 unless the guest switches sets)"),
        ]
    ) { host, params, _ throws(PluginError) in
        let keyboardIRQ = params.int("irq_kbd"), auxIRQ = params.int("irq_aux")
        guard (0...23).contains(keyboardIRQ), (0...23).contains(auxIRQ) else {
            throw PluginError("irq_kbd \(keyboardIRQ) and irq_aux \(auxIRQ) must lie in 0...23")
        }
        // Each line is driven as one level; two sources on one line would cancel each other.
        guard keyboardIRQ != auxIRQ else { throw PluginError("irq_kbd and irq_aux are both \(keyboardIRQ); they must differ") }
        guard let resetAction = ResetAction(rawValue: params.string("reset_action")) else {
            throw PluginError("reset_action '\(params.string("reset_action"))' is not reset or poweroff")
        }
        let input = try HostInput.open(params.string("input"), parameter: "input")
        do throws(PluginError) {
            return try I8042(
                host: host, keyboardIRQ: UInt32(keyboardIRQ), auxIRQ: UInt32(auxIRQ), resetAction: resetAction,
                claimSystemControlA: params.bool("port92"), input: input)
        } catch {
            input?.close()
            throw error
        }
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: I8042.definition) }
