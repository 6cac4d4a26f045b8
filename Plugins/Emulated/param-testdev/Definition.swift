import VeneerPluginKit

extension ParamTestDevice {
    static let definition = PluginDefinition(
        name: "param-testdev",
        version: "1.0.0",
        summary: "parameter test device: reports the disk tables (a parameter group) it was created with",
        stateVersion: 1,
        parameters: [
            ParameterSpec("port", .int(min: 0, max: 0xfffc), default: "0x6f0", doc: "first of the 4 I/O ports"),
            ParameterSpec("disk", .group(min: 0, max: 8, members: [
                ParameterSpec("lun", .int(min: 0, max: 63), default: nil, doc: "logical unit number, unique in the device"),
                ParameterSpec("path", .path(words: ["none"]), default: nil, doc: "the image file"),
                ParameterSpec("cache", .choice(["none", "writeback", "unsafe"]), default: "none", doc: "host cache mode"),
                ParameterSpec("read_only", .bool, default: "false", doc: "refuse the guest's writes"),
            ]), default: nil, doc: "one [[device.disk]] table per disk"),
        ]
    ) { host, params, _ throws(PluginError) in
        try ParamTestDevice(host: host, port: UInt16(truncatingIfNeeded: params.int("port")),
                            disks: try ParamTestDevice.disks(params.groups("disk")))
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: ParamTestDevice.definition) }
