import StorVSPProtocol
import VeneerDisk
import VeneerPluginKit

extension StorVSPController {
    static let defaultMaxTransferBytes = 512 * 1024

    static let definition = PluginDefinition(
        name: "storvsp",
        version: "1.0.0",
        summary: "synthetic SCSI controller (Hyper-V storvsp): disks and DVD drives over VMBus",
        kind: .synthetic,
        stateVersion: 1,
        parameters: [
            ParameterSpec("instance", .string, default: "",
                          doc: "the controller's instance GUID (default: derived from the device id, stable across boots)"),
            ParameterSpec("max_subchannels", .int(min: 0, max: 64), default: "64",
                          doc: "sub-channels offered at most (the guest asks for one per vCPU beyond the first)"),
            ParameterSpec("max_transfer_bytes", .int(min: 4096, max: 8 << 20), default: String(defaultMaxTransferBytes),
                          doc: "largest transfer per command, a multiple of 4096 (Linux: max_sectors = this / 512)"),
            ParameterSpec("queue_depth", .int(min: 1, max: 1024), default: "128",
                          doc: "commands in flight per channel before the VSP stops reading that channel's ring"),
            ParameterSpec("disk", .group(min: 0, max: LUNMap.targets * LUNMap.lunsPerTarget, members: DiskConfiguration.members),
                          default: nil, doc: "one [[device.disk]] table per LUN (none: an empty controller)"),
        ],
        // Each channel is served under its own lock (ChannelTable); nothing else is shared.
        concurrent: true
    ) { host, params, name throws(PluginError) in
        let transfer = params.int("max_transfer_bytes")
        guard transfer % 4096 == 0 else {
            throw PluginError("device '\(name)': max_transfer_bytes \(transfer) is not a multiple of 4096")
        }
        let instance = params.string("instance").isEmpty ? StableIdentity.instanceGUID(for: name) : params.string("instance")
        let limits = ControllerState.Limits(subChannelCap: Int(params.int("max_subchannels")), maxTransferBytes: UInt32(transfer),
                                            queueDepth: Int(params.int("queue_depth")))
        var disks: [DiskConfiguration] = []
        for table in params.groups("disk") { disks.append(try DiskConfiguration(table, device: name)) }
        return try StorVSPController(host: host, name: name, instance: instance, limits: limits, disks: disks, opener: openImage)
    }

    /// Opens a LUN's image (nil for an empty CD/DVD drive): raw or VHDX, detected by signature
    /// unless the table names the format; an ISO is raw.
    @Sendable static func openImage(_ disk: DiskConfiguration) throws(DiskError) -> (any DiskImage)? {
        if disk.path.isEmpty { return nil }
        var format = disk.format.flatMap(DiskFormat.init(rawValue:))
        if disk.kind == .cdrom && format == nil { format = .raw }
        return try openDiskImage(path: disk.path, format: format, readOnly: disk.readOnly || disk.kind == .cdrom,
                                 logicalBlockSize: disk.logicalBlockSize, physicalBlockSize: disk.physicalBlockSize)
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: StorVSPController.definition) }
