import VeneerDisk
import VeneerPluginKit

/// One `[[device.disk]]` table, validated.
struct DiskConfiguration: Sendable, Equatable {
    var lun: Int
    var target: Int
    var path: String
    /// nil: detect from the file's signature.
    var format: String?
    var readOnly: Bool
    var cache: DiskCacheMode
    var serial: String?
    var logicalBlockSize: UInt32?
    var physicalBlockSize: UInt32?
    var kind: LogicalUnit.Kind

    /// Reads one table (defaults already filled in by the host); `device` names errors.
    init(_ table: Parameters, device: String) throws(PluginError) {
        lun = Int(table.int("lun"))
        target = Int(table.int("target"))
        guard LUNMap.isValid(target: target, lun: lun) else {
            throw PluginError("device '\(device)': disk at target \(target) LUN \(lun) is outside targets 0-1, LUNs 0-63")
        }
        path = table.string("path")
        let format = table.string("format")
        self.format = format == "auto" ? nil : format
        readOnly = table.bool("read_only")
        guard let cache = DiskCacheMode(rawValue: table.string("cache")) else {
            throw PluginError("device '\(device)': LUN \(lun): unknown cache mode '\(table.string("cache"))'")
        }
        self.cache = cache
        let serial = table.string("serial")
        self.serial = serial.isEmpty ? nil : serial
        let logical = table.int("logical_block_size"), physical = table.int("physical_block_size")
        logicalBlockSize = logical == 0 ? nil : UInt32(logical)
        physicalBlockSize = physical == 0 ? nil : UInt32(physical)
        guard let kind = LogicalUnit.Kind(rawValue: table.string("type")) else {
            throw PluginError("device '\(device)': LUN \(lun): unknown type '\(table.string("type"))'")
        }
        self.kind = kind
        if kind == .disk && path.isEmpty {
            throw PluginError("device '\(device)': LUN \(lun): a disk needs a path (only a CD/DVD drive may be empty)")
        }
    }

    init(lun: Int, target: Int = 0, path: String, format: String? = nil, readOnly: Bool = false, cache: DiskCacheMode = .none,
         serial: String? = nil, logicalBlockSize: UInt32? = nil, physicalBlockSize: UInt32? = nil, kind: LogicalUnit.Kind = .disk) {
        self.lun = lun
        self.target = target
        self.path = path
        self.format = format
        self.readOnly = readOnly
        self.cache = cache
        self.serial = serial
        self.logicalBlockSize = logicalBlockSize
        self.physicalBlockSize = physicalBlockSize
        self.kind = kind
    }

    /// The group's member schema (API: ParameterSpec `.group(min:max:members:)`).
    static let members: [ParameterSpec] = [
        ParameterSpec("lun", .int(min: 0, max: 63), default: nil, doc: "the LUN the guest sees (0-63)"),
        ParameterSpec("target", .int(min: 0, max: 1), default: "0", doc: "the SCSI target id (0-1)"),
        ParameterSpec("path", .path(words: []), default: nil, doc: "the image file: raw or VHDX, an ISO for a CD/DVD (\"\": a drive without a medium)"),
        ParameterSpec("format", .choice(["auto", "raw", "vhdx"]), default: "auto", doc: "the image format (auto: by signature)"),
        ParameterSpec("read_only", .bool, default: "false", doc: "refuse guest writes (a CD/DVD always is)"),
        ParameterSpec("cache", .choice(["none", "writeback", "unsafe"]), default: "none",
                      doc: "none: O_DIRECT; writeback: host page cache; unsafe: flushes ignored (scratch disks)"),
        ParameterSpec("serial", .string, default: "", doc: "the serial number in VPD page 0x80 (default: derived from instance and LUN)"),
        ParameterSpec("logical_block_size", .intChoice([0, 512, 4096]), default: "0", doc: "the guest's logical block size (0: the image's)"),
        ParameterSpec("physical_block_size", .intChoice([0, 512, 4096]), default: "0", doc: "the reported physical block size (0: the image's)"),
        ParameterSpec("type", .choice(["disk", "cdrom"]), default: "disk", doc: "disk, or cdrom: a read-only DVD-ROM drive over an ISO"),
    ]
}

/// Stable identities derived from the controller's instance GUID, so that a guest sees the same
/// serial numbers and designators on every boot.
enum StableIdentity {
    /// A 128-bit FNV-1a hash (two 64-bit lanes with different offsets) of `text`.
    static func hash128(_ text: String) -> [UInt8] {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325, b: UInt64 = 0x84222325_cbf29ce4
        for byte in text.utf8 {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = b.rotatedLeft(by: 7)
        }
        return (0..<8).map { UInt8(truncatingIfNeeded: a >> (8 * $0)) } + (0..<8).map { UInt8(truncatingIfNeeded: b >> (8 * $0)) }
    }

    /// A GUID string for a device id (version 4 layout, variant 1).
    static func instanceGUID(for device: String) -> String {
        var bytes = hash128("veneer-storvsp:" + device)
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { String($0, radix: 16).leftPadded(2) }.joined()
        let c = Array(hex)
        return [String(c[0..<8]), String(c[8..<12]), String(c[12..<16]), String(c[16..<20]), String(c[20..<32])].joined(separator: "-")
    }

    static func naa(instance: String, target: Int, lun: Int) -> [UInt8] {
        hash128("\(instance.lowercased())/\(target)/\(lun)")
    }

    static func serial(instance: String, target: Int, lun: Int) -> String {
        naa(instance: instance, target: target, lun: lun).prefix(8).map { String($0, radix: 16).leftPadded(2) }.joined()
    }
}

extension UInt64 {
    func rotatedLeft(by n: UInt64) -> UInt64 { (self << n) | (self >> (64 - n)) }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
