import ArgumentParser
import VeneerDisk
import VeneerHost
#if canImport(Glibc)
import Glibc
#endif

/// `veneer disk create|info|check`: raw and VHDX images without another tool.
struct Disk: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, describe and check disk images (raw, VHDX).",
        subcommands: [DiskCreate.self, DiskInfo.self, DiskCheck.self])
}

/// sysexits statuses of `veneer disk` (64 and 66 as the other subcommands use them).
enum DiskExitStatus {
    static let usage: Int32 = 64       // EX_USAGE: bad options
    static let dataError: Int32 = 65   // EX_DATAERR: the image is corrupt or uses something unsupported
    static let noInput: Int32 = 66     // EX_NOINPUT: the image (or its parent) cannot be opened
    static let cannotCreate: Int32 = 73  // EX_CANTCREAT: the new image cannot be made (exists, no space)
    static let ioError: Int32 = 74     // EX_IOERR: reading or writing the image failed

    static func forOpen(_ e: DiskError) -> Int32 {
        switch e.kind {
        case .corrupt, .unsupported: dataError
        case .invalidRequest: usage
        case .io(let errno) where errno == ENOENT || errno == EACCES || errno == EISDIR || errno == ENOTDIR: noInput
        case .io, .noSpace: ioError
        }
    }
}

/// A size with an optional binary unit: 4096, 512K, 10G, 1T.
struct ByteSize: ExpressibleByArgument {
    let bytes: UInt64
    init?(argument: String) {
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var text = Substring(argument.uppercased())
        if text.hasSuffix("IB") { text = text.dropLast(2) } else if text.hasSuffix("B") { text = text.dropLast() }
        var scale: UInt64 = 1
        if let last = text.last, let unit = units[last] { scale = unit; text = text.dropLast() }
        guard let n = UInt64(text) else { return nil }
        let (product, overflow) = n.multipliedReportingOverflow(by: scale)
        guard !overflow else { return nil }
        bytes = product
    }
}

extension DiskFormat: ExpressibleByArgument {}
extension VHDXImage.DiskType: ExpressibleByArgument {}

struct DiskCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a raw or VHDX image.")

    @Argument(help: "The new image (must not exist).") var path: String
    @Option(help: "Virtual size, e.g. 10G (not with --parent: a child has its parent's size).") var size: ByteSize?
    @Option(help: "raw or vhdx (default: vhdx for a .vhdx path or with --parent, raw otherwise).") var format: DiskFormat?
    @Option(help: "VHDX type: dynamic (default) or fixed; --parent makes a differencing disk.") var type: VHDXImage.DiskType?
    @Option(help: "Parent VHDX of a differencing disk.") var parent: String?
    @Option(help: "VHDX block size, 1M to 256M (default 32M).") var blockSize: ByteSize?
    @Option(help: "VHDX logical sector size: 512 (default) or 4096.") var logicalSector: UInt32?
    @Option(help: "VHDX physical sector size: 512 or 4096 (default).") var physicalSector: UInt32?

    func run() throws {
        let format = format ?? (parent != nil || path.lowercased().hasSuffix(".vhdx") ? .vhdx : .raw)
        do {
            switch format {
            case .raw:
                guard parent == nil, type == nil, blockSize == nil, logicalSector == nil, physicalSector == nil else {
                    throw fail("--parent, --type, --block-size and the sector options are for VHDX; a raw image's block sizes are set in the VM config", status: DiskExitStatus.usage)
                }
                guard let size else { throw fail("disk create: --size is required", status: DiskExitStatus.usage) }
                try RawImage.create(path: path, size: size.bytes)
            case .vhdx:
                if parent != nil, size != nil { throw fail("disk create: --size and --parent exclude each other (a child has its parent's size)", status: DiskExitStatus.usage) }
                if parent != nil, let type, type != .differencing { throw fail("disk create: --parent makes a differencing disk, not \(type.rawValue)", status: DiskExitStatus.usage) }
                if parent == nil, type == .differencing { throw fail("disk create: a differencing disk needs --parent", status: DiskExitStatus.usage) }
                guard parent != nil || size != nil else { throw fail("disk create: --size is required", status: DiskExitStatus.usage) }
                guard (blockSize?.bytes ?? 0) <= UInt64(UInt32.max) else { throw fail("disk create: --block-size is at most 256M", status: DiskExitStatus.usage) }
                var options = VHDXImage.CreateOptions(type: parent != nil ? .differencing : type ?? .dynamic, virtualSize: size?.bytes ?? 0, parentPath: parent)
                if let blockSize { options.blockSize = UInt32(blockSize.bytes) }
                if let logicalSector {
                    options.logicalSectorSize = logicalSector
                    if physicalSector == nil { options.physicalSectorSize = max(4096, logicalSector) }
                }
                if let physicalSector { options.physicalSectorSize = physicalSector }
                try VHDXImage.create(path: path, options: options)
            }
        } catch let error as DiskError {
            let status: Int32
            switch error.kind {
            case .invalidRequest: status = DiskExitStatus.usage
            case .corrupt, .unsupported: status = DiskExitStatus.dataError
            case .io(let e) where e == EEXIST || e == EACCES || e == ENOENT: status = error.path == path ? DiskExitStatus.cannotCreate : DiskExitStatus.noInput
            case .io, .noSpace: status = DiskExitStatus.cannotCreate
            }
            throw fail("\(error)", status: status)
        }
    }
}

struct DiskInfo: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Describe an image: format, type, sizes, parent chain.")

    @Argument(help: "The image.") var path: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let image: any DiskImage
        do { image = try openDiskImage(path: path, format: nil, readOnly: true) } catch {
            throw fail("\(error)", status: DiskExitStatus.forOpen(error))
        }
        var fields: [(String, String, quoted: Bool)] = []
        var st = stat()
        let onDisk = stat(path, &st) == 0 ? UInt64(st.st_blocks) * 512 : 0
        fields.append(("path", path, true))
        if let vhdx = image as? VHDXImage {
            fields += [("format", "vhdx", true), ("type", vhdx.type.rawValue, true)]
            fields.append(("virtual_size", "\(image.geometry.virtualSize)", false))
            fields.append(("allocated", "\(vhdx.allocatedBytes)", false))
            fields.append(("file_size_on_disk", "\(onDisk)", false))
            fields.append(("logical_sector_size", "\(image.geometry.logicalBlockSize)", false))
            fields.append(("physical_sector_size", "\(image.geometry.physicalBlockSize)", false))
            fields.append(("block_size", "\(vhdx.blockSize)", false))
            fields.append(("virtual_disk_id", "\(vhdx.virtualDiskID)", true))
            fields.append(("creator", vhdx.creator, true))
            let chain = vhdx.parentChain.map(\.path)
            fields.append(("parents", json ? "[" + chain.map(jsonString).joined(separator: ", ") + "]" : chain.joined(separator: " -> "), false))
        } else {
            fields += [("format", "raw", true), ("type", (image as? RawImage)?.isBlockDevice == true ? "block-device" : "file", true)]
            fields.append(("virtual_size", "\(image.geometry.virtualSize)", false))
            fields.append(("allocated", "\(onDisk)", false))
            fields.append(("logical_sector_size", "\(image.geometry.logicalBlockSize)", false))
            fields.append(("physical_sector_size", "\(image.geometry.physicalBlockSize)", false))
        }
        if json {
            print("{" + fields.map { "\(jsonString($0.0)): \($0.quoted ? jsonString($0.1) : $0.1)" }.joined(separator: ", ") + "}")
        } else {
            for (name, value, _) in fields where !(name == "parents" && value.isEmpty) {
                print("\(name.replacingOccurrences("_", " ")): \(name.hasSuffix("size") || name == "allocated" || name.hasPrefix("file_size") ? humanBytes(value) : value)")
            }
        }
    }
}

struct DiskCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check an image's structure, BAT and log: exit 0 if clean, 65 with one line per problem otherwise.")

    @Argument(help: "The image.") var path: String
    @Flag(help: "Open the image writable so a pending VHDX log is replayed (the file is changed).") var repair = false

    func run() throws {
        var problems: [String] = []
        let format: DiskFormat
        do { format = try DiskFormat.detect(path: path) } catch { throw fail("\(error)", status: DiskExitStatus.forOpen(error)) }
        if format == .vhdx {
            do {
                if repair { try VHDXImage.open(path: path, readOnly: false).close() }
                problems += try VHDXImage.redundancyProblems(path: path)
            } catch {
                if case .io = error.kind { throw fail("\(error)", status: DiskExitStatus.forOpen(error)) }
                problems.append(error.message)
            }
        }
        do { _ = try openDiskImage(path: path, format: format, readOnly: true) } catch {
            if case .io = error.kind, error.path == path { throw fail("\(error)", status: DiskExitStatus.forOpen(error)) }
            if !problems.contains(error.message) && !(error.message.contains("log holds") && problems.contains(where: { $0.contains("log holds") })) {
                problems.append(error.path == path ? error.message : "\(error)")
            }
        }
        guard problems.isEmpty else {
            for p in problems { writeAll(2, "veneer: \(path): \(oneLine(p))\n") }
            throw ExitCode(DiskExitStatus.dataError)
        }
        print("\(path): ok (\(format.rawValue))")
    }
}

private func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

private func humanBytes(_ text: String) -> String {
    guard let n = UInt64(text) else { return text }
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(n), unit = 0
    while value >= 1024, unit < units.count - 1, n % 1024 == 0 || value >= 10 * 1024 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(n) bytes" : (value == value.rounded() ? "\(Int(value)) \(units[unit])" : "\((value * 10).rounded() / 10) \(units[unit])") + " (\(n) bytes)"
}

extension String {
    fileprivate func replacingOccurrences(_ a: Character, _ b: Character) -> String { String(map { $0 == a ? b : $0 }) }
}
