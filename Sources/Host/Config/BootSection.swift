/// The `[boot]` table: which format, and the files and strings that format takes.
///
///     format = "flat"       image, mode, load_address, entry
///     format = "bzimage"    kernel, cmdline, initrd
///     format = "pvh"        kernel, cmdline, initrd
///     format = "multiboot"  kernel, cmdline, [[boot.module]] { path, cmdline }
///
/// A key another format takes is an error naming it (it would be silently ignored otherwise).
extension ConfigParser {
    static let bootFormats = ["flat", "bzimage", "pvh", "multiboot"]

    static func parseBoot(_ boot: inout TableReader, file: String, baseDirectory: String) throws(ConfigError) -> BootImage {
        let format = try boot.string("format") ?? "flat"
        let keys: Set<String>
        switch format {
        case "flat": keys = ["image", "mode", "load_address", "entry"]
        case "bzimage", "pvh": keys = ["kernel", "cmdline", "initrd"]
        case "multiboot": keys = ["kernel", "cmdline", "module"]
        default:
            throw ConfigError(file: file, key: "boot.format",
                              reason: "'\(format)' is not a supported format (supported: \(bootFormats.joined(separator: ", ")))")
        }
        for key in boot.table.keys.sorted() where key != "format" && !keys.contains(key) {
            if let hint = misplacedKeyHint(key, format: format) {
                throw ConfigError(file: file, key: "boot.\(key)", reason: "not used by format \"\(format)\": \(hint)")
            }
        }
        func path(_ key: String, _ reader: inout TableReader, what: String) throws(ConfigError) -> String {
            guard let p = try reader.string(key) else {
                throw ConfigError(file: file, key: "\(reader.prefix)\(key)", reason: "missing: the path of \(what)")
            }
            return resolve(p, against: baseDirectory)
        }

        let image: BootImage
        switch format {
        case "flat":
            let path = try path("image", &boot, what: "the image to boot")
            let modeName = try boot.string("mode") ?? "long"
            guard let mode = CPUMode(rawValue: modeName) else {
                throw ConfigError(file: file, key: "boot.mode", reason: "'\(modeName)' is not one of real, protected, long")
            }
            let load = try boot.int("load_address", in: 0...Int64.max).map(UInt64.init)
            let entry = try boot.int("entry", in: 0...Int64.max).map(UInt64.init)
            image = .flat(FlatImage(path: path, mode: mode, loadAddress: load, entry: entry))
        case "bzimage", "pvh":
            let kernel = try path("kernel", &boot, what: "the kernel to boot")
            let cmdline = try boot.string("cmdline") ?? ""
            let initrd = try boot.string("initrd").map { resolve($0, against: baseDirectory) }
            image = format == "pvh" ? .pvh(PVHImage(path: kernel, cmdline: cmdline, initrd: initrd))
                : .bzImage(BzImage(path: kernel, cmdline: cmdline, initrd: initrd))
        default:
            let kernel = try path("kernel", &boot, what: "the kernel to boot")
            let cmdline = try boot.string("cmdline") ?? ""
            var modules: [MultibootImage.Module] = []
            for var table in try boot.arrayOfTables("module") {
                let modulePath = try path("path", &table, what: "the module file")
                modules.append(MultibootImage.Module(path: modulePath, cmdline: try table.string("cmdline") ?? ""))
                try table.finish()
            }
            image = .multiboot(MultibootImage(path: kernel, cmdline: cmdline, modules: modules))
        }
        try boot.finish()
        return image
    }

    /// Why a key that belongs to another format is wrong here, or nil for a key no format takes
    /// (that one is reported as unknown).
    static func misplacedKeyHint(_ key: String, format: String) -> String? {
        switch key {
        case "image": "the file is named by `kernel` for this format"
        case "mode", "load_address", "entry": "the \(format) boot protocol decides where the kernel is loaded and how it is entered"
        case "kernel": "a flat image is named by `image`"
        case "cmdline": "a flat image takes no command line"
        case "initrd": format == "multiboot" ? "multiboot takes [[boot.module]] tables instead" : "a flat image takes no initrd"
        case "module": "only format \"multiboot\" takes [[boot.module]] tables\(format == "flat" ? "" : "; use `initrd`")"
        default: nil
        }
    }
}
