/// The FW_CFG_FILE_DIR item: a big-endian count, then one 64-byte entry per named file — its size
/// (big-endian 32 bits), its selector (big-endian 16 bits), two reserved bytes and its name,
/// NUL-padded to 56 bytes. Entries are sorted by name, as firmware may look them up by bisection.
struct FWCfgFile: Equatable {
    static let entrySize = 64
    static let nameSize = 56

    var name: String
    var selector: UInt16
    var data: [UInt8]
}

enum FWCfgFileDirectory {
    /// Callers name files with fixed ASCII names shorter than the 56-byte field.
    static func encode(_ files: [FWCfgFile]) -> [UInt8] {
        var bytes = bigEndian(UInt64(files.count), count: 4)
        for f in files {
            let name = Array(f.name.utf8)
            bytes += bigEndian(UInt64(f.data.count), count: 4) + bigEndian(UInt64(f.selector), count: 2) + [0, 0]
            bytes += name + [UInt8](repeating: 0, count: FWCfgFile.nameSize - name.count)
        }
        return bytes
    }
}
