import VeneerPluginKit

/// A test device that shows the parameters it was created with, above all a parameter group
/// (ABI 1.7): a `disk` table per "disk", as a storage controller takes them. It logs one line per
/// table at create (`disk[0]: lun=0 path=/vm/a.img cache=none read_only=false`) and answers at
/// `port`:
///
///   port + 0   RW  selects a table (writes of the index)
///   port + 1   RO  the number of tables
///   port + 2   RO  the selected table's lun (0xff when the index is past the last table)
///   port + 3   RO  the selected table's read_only (0 or 1), 0xff past the last table
///
/// Two tables with one lun are refused at create, naming both, as a real controller must.
final class ParamTestDevice: VeneerDevice {
    struct Disk: Equatable {
        var lun: UInt8
        var path: String
        var cache: String
        var readOnly: Bool
    }

    let disks: [Disk]
    private var selected: UInt8 = 0

    init(host: HostServices, port: UInt16, disks: [Disk]) throws(PluginError) {
        self.disks = disks
        try host.registerPortIO(region: 0, port: port, length: 4)
        for (i, d) in disks.enumerated() {
            host.log(.info, "disk[\(i)]: lun=\(d.lun) path=\(d.path) cache=\(d.cache) read_only=\(d.readOnly)")
        }
    }

    /// The tables as the host validated them (every member present, defaults filled in).
    static func disks(_ tables: [Parameters]) throws(PluginError) -> [Disk] {
        var disks: [Disk] = []
        for (i, t) in tables.enumerated() {
            let disk = Disk(lun: UInt8(truncatingIfNeeded: t.int("lun")), path: t.string("path"), cache: t.string("cache"),
                            readOnly: t.bool("read_only"))
            if let other = disks.firstIndex(where: { $0.lun == disk.lun }) {
                throw PluginError("disk[\(i)].lun: \(disk.lun) is already disk[\(other)]'s")
            }
            disks.append(disk)
        }
        return disks
    }

    func reset() { selected = 0 }

    func io(_ access: IOAccess, data: inout UInt64) {
        let disk = Int(selected) < disks.count ? disks[Int(selected)] : nil
        switch (access.offset, access.isWrite) {
        case (0, true): selected = UInt8(truncatingIfNeeded: data)
        case (0, false): data = UInt64(selected)
        case (1, false): data = UInt64(disks.count)
        case (2, false): data = disk.map { UInt64($0.lun) } ?? 0xff
        case (3, false): data = disk.map { $0.readOnly ? 1 : 0 } ?? 0xff
        default: break
        }
    }

    func save(to state: inout StateWriter) { state.write(selected) }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        selected = try state.read(UInt8.self)
        try state.finish()
    }
}
