import VeneerPluginKit

extension PCITestDevice {
    static let definition = PluginDefinition(
        name: "pci-testdev",
        version: "1.0.0",
        summary: "PCI test function: a register file behind a memory, an I/O and a 64-bit BAR, a capability and INTA#",
        stateVersion: 1,
        parameters: [
            ParameterSpec("slot", .int(min: 0, max: 31), default: "0", doc: "PCI device number on bus 0 (0: the lowest free one)"),
            ParameterSpec("irq", .int(min: 0, max: 23), default: "11", doc: "interrupt line INTA# drives (and the Interrupt Line register's start value)"),
            ParameterSpec("vendor_id", .int(min: 1, max: 0xfffe), default: "0xfffe",
                          doc: "vendor id (the default is a placeholder no vendor should use; change it if it clashes)"),
            ParameterSpec("device_id", .int(min: 0, max: 0xffff), default: "0x7e57", doc: "device id"),
        ]
    ) { host, params, _ throws(PluginError) in
        let slot = params.int("slot")
        return try PCITestDevice(
            host: host, vendorID: UInt16(truncatingIfNeeded: params.int("vendor_id")),
            deviceID: UInt16(truncatingIfNeeded: params.int("device_id")),
            irq: UInt8(truncatingIfNeeded: params.int("irq")), slot: slot == 0 ? nil : UInt8(truncatingIfNeeded: slot))
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: PCITestDevice.definition) }
