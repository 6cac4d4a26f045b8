import TOMLKit

/// Parses a VM config file (TOML) into a `VMConfig`. Relative paths are resolved against the
/// config file's directory. Unknown keys are errors, so a typo never silently changes a VM.
public enum ConfigParser {
    /// The largest config file read (1 MiB): a VM config is a few hundred bytes.
    public static let maxConfigBytes = 1 << 20
    /// The deepest nesting a config may use (`ConfigPrescan`).
    public static var maxNestingDepth: Int { ConfigPrescan.maxDepth }

    public static func load(path: String, baseDirectory: String? = nil) throws(ConfigError) -> VMConfig {
        let bytes: [UInt8]
        do { bytes = try readWholeFile(path, limit: maxConfigBytes) } catch {
            throw ConfigError(file: path, key: "", reason: error.reason,
                              unreadable: true)
        }
        return try load(bytes: bytes, file: path, baseDirectory: baseDirectory)
    }

    /// Everything `load(path:)` does after reading the file (the fuzz tests enter here).
    public static func load(bytes: [UInt8], file: String, baseDirectory: String? = nil) throws(ConfigError) -> VMConfig {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(file: file, key: "", reason: "the file is not UTF-8 text")
        }
        return try parse(text, file: file, baseDirectory: baseDirectory)
    }

    public static func parse(_ text: String, file: String, baseDirectory explicitBase: String? = nil) throws(ConfigError) -> VMConfig {
        // Size, NUL and nesting first: the TOML library truncates strings at NUL and recurses
        // once per nesting level.
        let bytes = Array(text.utf8)
        guard bytes.count <= maxConfigBytes else {
            throw ConfigError(file: file, key: "", reason: "the config has \(bytes.count) bytes, more than \(maxConfigBytes)")
        }
        try ConfigPrescan.check(bytes, file: file)
        let root: TOMLTable
        do { root = try TOMLTable(string: text) } catch let error as TOMLParseError {
            throw ConfigError(file: "\(file):\(error.source.begin.line):\(error.source.begin.column)", key: "", reason: error.description)
        } catch {
            throw ConfigError(file: file, key: "", reason: "\(error)")
        }
        var reader = TableReader(table: root, file: file, prefix: "")
        let baseDirectory = explicitBase ?? directory(of: file)

        let name = try reader.string("name") ?? "vm"
        let memoryBytes = try reader.memorySize("memory") ?? 128 << 20
        let vcpus = try reader.int("vcpus", in: 1...Int64(VMConfig.maxVCPUs)) ?? 1
        let hyperv = try reader.bool("hyperv")
        let generation = try reader.int("generation", in: 1...2) ?? 2
        let onResetText = try reader.string("on_reset") ?? "stop"
        guard let onReset = VMConfig.ResetAction(rawValue: onResetText) else {
            throw ConfigError(file: file, key: "on_reset", reason: "'\(onResetText)' is not one of stop, restart")
        }

        guard var bootTable = try reader.table("boot") else {
            throw ConfigError(file: file, key: "boot", reason: "missing: a [boot] table naming the image is required")
        }
        let boot = try parseBoot(&bootTable, file: file, baseDirectory: baseDirectory)
        var cpu = CPUModel()
        if var cpuTable = try reader.table("cpu") { cpu = try parseCPU(&cpuTable, file: file) }
        var integration = IntegrationServices()
        if var table = try reader.table("integration") {
            integration = try IntegrationServices.parse(&table, file: file)
            if hyperv == false, let on = integration.explicitlyEnabled.sorted().first {
                throw ConfigError(file: file, key: "integration.\(on)",
                                  reason: "integration services run over VMBus, and this VM has hyperv = false")
            }
        }

        var devices: [DeviceConfig] = []
        for (i, var table) in try reader.arrayOfTables("device").enumerated() {
            let key = "device[\(i)]"
            guard let plugin = try table.string("plugin") else {
                throw ConfigError(file: file, key: "\(key).plugin", reason: "missing: which plugin implements this device")
            }
            // Checked before anything else uses it: the name becomes a file name in the search
            // path, so `/` or `..` would reach outside it (a file elsewhere needs `path`).
            guard PluginLibrary.isValidPluginName(plugin) else {
                throw ConfigError(file: file, key: "\(key).plugin", reason: PluginLoadError.invalidName(name: plugin).description)
            }
            let id = try table.string("id") ?? "\(plugin)-\(i)"
            guard PluginLibrary.isValidName(id) else {
                throw ConfigError(file: file, key: "\(key).id", reason: "'\(id)' must match [a-z][a-z0-9_-]*")
            }
            if devices.contains(where: { $0.id == id }) {
                throw ConfigError(file: file, key: "\(key).id", reason: "'\(id)' is already used by another device")
            }
            let path = try table.string("path").map { resolve($0, against: baseDirectory) }
            let parameters = try table.remainingAsParameters(deviceID: id)
            devices.append(DeviceConfig(id: id, plugin: plugin, path: path, parameters: parameters, key: key))
        }
        try reader.finish()
        if generation == 1 {
            devices = Generation.one.defaultDevices.filter { d in !devices.contains { $0.plugin == d.plugin || $0.id == d.id } } + devices
        }
        var config = VMConfig(file: file, name: name, memoryBytes: memoryBytes, vcpus: UInt32(vcpus), hyperv: hyperv,
                              generation: generation == 1 ? .one : .two, boot: boot, devices: devices)
        config.onReset = onReset
        config.baseDirectory = explicitBase
        config.cpu = cpu
        config.integration = integration
        return config
    }

    /// The directory relative paths in `file` are resolved against.
    public static func directory(of file: String) -> String {
        file.lastIndex(of: "/").map { String(file[..<$0]) } ?? "."
    }

    static func resolve(_ path: String, against directory: String) -> String {
        path.hasPrefix("/") ? path : "\(directory)/\(path)"
    }
}

/// Reads typed keys from one TOML table, remembering which were used so leftovers are reported.
struct TableReader {
    let table: TOMLTable
    let file: String
    let prefix: String
    private var used = Set<String>()

    init(table: TOMLTable, file: String, prefix: String) {
        self.table = table
        self.file = file
        self.prefix = prefix
    }

    private func error(_ key: String, _ reason: String) -> ConfigError {
        ConfigError(file: file, key: prefix + key, reason: reason)
    }

    private mutating func value(_ key: String) -> (any TOMLValueConvertible)? {
        used.insert(key)
        return table[key]
    }

    mutating func string(_ key: String) throws(ConfigError) -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.string else { throw error(key, "expected a string, got \(v.type)") }
        return s
    }

    mutating func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard v.type == .bool, let b = v.bool else { throw error(key, "expected true or false, got \(v.type)") }
        return b
    }

    mutating func int(_ key: String, in range: ClosedRange<Int64>) throws(ConfigError) -> Int64? {
        guard let v = value(key) else { return nil }
        guard v.type == .int, let i = v.int else { throw error(key, "expected an integer, got \(v.type)") }
        guard range.contains(Int64(i)) else { throw error(key, "\(i) is outside \(range.lowerBound)...\(range.upperBound)") }
        return Int64(i)
    }

    /// "64M", "2G", "512K" or an integer number of MiB.
    mutating func memorySize(_ key: String) throws(ConfigError) -> UInt64? {
        guard let v = value(key) else { return nil }
        if v.type == .int, let mib = v.int {
            guard mib > 0, mib <= 1 << 20 else { throw error(key, "\(mib) MiB is outside 1...1048576") }
            return UInt64(mib) << 20
        }
        guard let s = v.string else { throw error(key, "expected a size such as \"64M\" or an integer of MiB, got \(v.type)") }
        let units: [Character: UInt64] = ["K": 10, "M": 20, "G": 30, "T": 40]
        guard let last = s.last, let shift = units[last], let n = UInt64(s.dropLast()), n > 0, n <= (1 << 40) >> shift else {
            throw error(key, "'\(s)' is not a size such as \"64M\" or \"2G\" (at most 1T)")
        }
        return n << shift
    }

    /// An array of strings (empty when the key is absent).
    mutating func strings(_ key: String) throws(ConfigError) -> [String] {
        guard let v = value(key) else { return [] }
        guard let array = v.array else { throw error(key, "expected an array of strings, got \(v.type)") }
        var result: [String] = []
        for i in 0..<array.count {
            guard let s = array[i].string else { throw error("\(key)[\(i)]", "expected a string, got \(array[i].type)") }
            result.append(s)
        }
        return result
    }

    mutating func table(_ key: String) throws(ConfigError) -> TableReader? {
        guard let v = value(key) else { return nil }
        guard let t = v.table else { throw error(key, "expected a table, got \(v.type)") }
        return TableReader(table: t, file: file, prefix: "\(prefix)\(key).")
    }

    mutating func arrayOfTables(_ key: String) throws(ConfigError) -> [TableReader] {
        guard let v = value(key) else { return [] }
        guard let array = v.array else { throw error(key, "expected [[\(key)]] tables, got \(v.type)") }
        var result: [TableReader] = []
        for i in 0..<array.count {
            guard let t = array[i].table else { throw error("\(key)[\(i)]", "expected a table, got \(array[i].type)") }
            result.append(TableReader(table: t, file: file, prefix: "\(prefix)\(key)[\(i)]."))
        }
        return result
    }

    /// Every key not read yet, as plugin parameters (the plugin's schema judges them). An array
    /// of tables (`[[device.disk]]`) is a parameter group; problems with one name the device by
    /// its id: `device "scsi0": disk[1].lun`.
    mutating func remainingAsParameters(deviceID: String) throws(ConfigError) -> [String: ParameterValidation.Input] {
        var result: [String: ParameterValidation.Input] = [:]
        for key in table.keys where !used.contains(key) {
            guard let v = value(key) else { continue }
            switch v.type {
            case .bool: result[key] = .bool(v.bool ?? false)
            case .int: result[key] = .int(Int64(v.int ?? 0))
            case .string: result[key] = .string(v.string ?? "")
            case .array: result[key] = try group(key, v.array, deviceID: deviceID)
            case .table:
                throw ConfigError(file: file, key: DeviceConfig.groupKey(deviceID, key),
                                  reason: "a single table; a parameter group is an array of tables, written [[device.\(key)]] once per table")
            default:
                throw error(key, "plugin parameters are booleans, integers, strings or arrays of tables, not \(v.type)")
            }
        }
        return result
    }

    /// A parameter group: every element a table of booleans, integers and strings.
    private func group(_ key: String, _ array: TOMLArray?, deviceID: String) throws(ConfigError) -> ParameterValidation.Input {
        func refuse(_ at: String, _ reason: String) -> ConfigError {
            ConfigError(file: file, key: DeviceConfig.groupKey(deviceID, at), reason: reason)
        }
        guard let array else { throw refuse(key, "expected an array of tables") }
        var tables: [[String: ParameterValidation.Input]] = []
        for i in 0..<array.count {
            guard let t = array[i].table else {
                throw refuse("\(key)[\(i)]", "expected a table ([[device.\(key)]]), got \(array[i].type); only arrays of tables are parameters")
            }
            var entries: [String: ParameterValidation.Input] = [:]
            for member in t.keys {
                guard let e = t[member] else { continue }
                switch e.type {
                case .bool: entries[member] = .bool(e.bool ?? false)
                case .int: entries[member] = .int(Int64(e.int ?? 0))
                case .string: entries[member] = .string(e.string ?? "")
                default:
                    throw refuse("\(key)[\(i)].\(member)", "values in a [[device.\(key)]] table are booleans, integers or strings, not \(e.type)")
                }
            }
            tables.append(entries)
        }
        return .group(tables)
    }

    /// Errors on the first key nobody asked for.
    func finish() throws(ConfigError) {
        if let extra = table.keys.sorted().first(where: { !used.contains($0) }) {
            throw error(extra, "unknown key")
        }
    }
}
