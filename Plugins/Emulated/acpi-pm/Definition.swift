import VeneerPluginKit

extension ACPIPowerManagement {
    static let definition = PluginDefinition(
        name: "acpi-pm",
        version: "1.0.0",
        summary: "ACPI fixed hardware: PM1a event/control blocks, PM timer, GPE0, SCI, S5 power-off, power button",
        stateVersion: 1,
        parameters: [
            ParameterSpec("pm1a_evt", .int(min: 0, max: 0xfffc), default: "0x600", doc: "PM1a event block (4 ports: PM1_STS, PM1_EN); FADT PM1a_EVT_BLK"),
            ParameterSpec("pm1a_cnt", .int(min: 0, max: 0xfffe), default: "0x604", doc: "PM1a control block (2 ports); FADT PM1a_CNT_BLK"),
            ParameterSpec("pm_tmr", .int(min: 0, max: 0xfffc), default: "0x608", doc: "PM timer (4 ports, 24-bit); FADT PM_TMR_BLK"),
            ParameterSpec("gpe0", .int(min: 0, max: 0xfffc), default: "0x620", doc: "GPE0 block (4 ports: GPE0_STS, GPE0_EN); FADT GPE0_BLK"),
            ParameterSpec("smi_cmd_port", .int(min: 0, max: 0xffff), default: "0xb2",
                          doc: "SMI command port taking ACPI_ENABLE 0xf0 / ACPI_DISABLE 0xf1; 0: none, ACPI mode from power-on"),
            ParameterSpec("sci_irq", .int(min: 0, max: 23), default: "9", doc: "SCI interrupt line (level-triggered); FADT SCI_INT"),
            ParameterSpec("s5_slp_typ", .int(min: 0, max: 7), default: "5", doc: "SLP_TYP value of S5 (soft off); the DSDT's \\_S5 must match"),
            ParameterSpec("power_button", .path(words: ["none"]), default: "none",
                          doc: "none, or a file or FIFO (relative to the config file): every byte read from it presses the power button"),
        ]
    ) { host, params, _ throws(PluginError) in
        func port(_ name: String) throws(PluginError) -> UInt16 {
            let value = params.int(name)
            guard let port = UInt16(exactly: value) else { throw PluginError("\(name) \(value) is not a port (0...0xffff)") }
            return port
        }
        let smi = try port("smi_cmd_port")
        let ports = Ports(
            pm1Event: try port("pm1a_evt"), pm1Control: try port("pm1a_cnt"), timer: try port("pm_tmr"),
            gpe0: try port("gpe0"), smiCommand: smi == 0 ? nil : smi)
        let sci = params.int("sci_irq"), s5 = params.int("s5_slp_typ")
        guard (0...23).contains(sci) else { throw PluginError("sci_irq \(sci) is outside 0...23") }
        guard (0...7).contains(s5) else { throw PluginError("s5_slp_typ \(s5) is outside 0...7 (SLP_TYP is 3 bits)") }
        let powerButton = try HostInput.open(params.string("power_button"), parameter: "power_button")
        do throws(PluginError) {
            return try ACPIPowerManagement(
                host: host, ports: ports, sciLine: UInt32(sci), s5SleepType: UInt16(s5), powerButton: powerButton)
        } catch {
            powerButton?.close()
            throw error
        }
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: ACPIPowerManagement.definition) }
