import CKVM
import VeneerPluginABI

/// Reads a plugin's descriptor out of its memory and checks every field before anything relies on
/// it: sizes and strides against what this ABI defines, counts against sane limits, every table
/// and string against the memory actually there (through `PluginMemory`, so a bad address is an
/// error, not a SIGSEGV), strings for termination, length and one-line text, and callbacks for
/// pointing at code. A refusal names the field: `params[1].name: ...`.
///
/// Nothing here dereferences a plugin pointer: every byte is copied out through `PluginMemory`
/// first, and structs are rebuilt from those copies.
public enum DescriptorReader {
    static let maxParameters = 256
    /// Longest accepted strings, in bytes without the NUL.
    static let maxNameBytes = 64
    static let maxVersionBytes = 64
    static let maxSummaryBytes = 256
    static let maxDocBytes = 1024
    static let maxValueBytes = 4096
    /// The ABI minor that added VENEER_PARAM_PATH and `choices` on integers.
    static let pathMinor: UInt16 = 6
    static let integerChoicesMinor: UInt16 = 6
    /// The ABI minor that added VENEER_PARAM_GROUP, and a group's bounds.
    static let groupMinor: UInt16 = 7
    static let maxGroupMembers = 64
    /// The most tables a group may allow: a VM config is at most 1 MiB, and each table becomes
    /// member_count values in create's arguments.
    static let maxGroupTables = 4096

    static var descriptorSize: Int { MemoryLayout<veneer_plugin_descriptor>.size }
    /// ABI 1.0's descriptor ends after `load`.
    static var descriptorMinimum: Int {
        (MemoryLayout<veneer_plugin_descriptor>.offset(of: \.load) ?? 144) + MemoryLayout<UnsafeRawPointer>.size
    }
    static var specSize: Int { MemoryLayout<veneer_param_spec>.size }
    /// A parameter spec as ABI 1.0 to 1.6 defined it without its reserved tail, the smallest
    /// stride a plugin may use (1.7 took `members` from that tail).
    static var specMinimum: Int { MemoryLayout<veneer_param_spec>.offset(of: \.members) ?? 56 }
    /// A group's spec must reach `member_count`.
    static var groupSpecMinimum: Int { MemoryLayout<veneer_param_spec>.offset(of: \.reserved) ?? 72 }

    /// The descriptor at `address` (what the entry point returned), as far as its struct_size
    /// reaches with later fields zero, and what it declares.
    public static func read(at address: UInt, path: String, memory: PluginMemory = PluginMemory(),
                            isCode: (UInt) -> Bool = { ckvm_address_is_code($0) != 0 })
        throws(PluginLoadError) -> (fields: veneer_plugin_descriptor, info: PluginInfo)
    {
        func bad(_ field: String, _ problem: String) -> PluginLoadError { .invalidField(path: path, field: field, problem: problem) }

        guard let head = memory.read(address, count: 8) else {
            throw .malformed(path: path, reason: "the entry returned \(hex(address)), which is not readable memory")
        }
        let size = Int(le32(head, 0))
        let major = UInt16(head[4]) | UInt16(head[5]) << 8, minor = UInt16(head[6]) | UInt16(head[7]) << 8
        let host = PluginLibrary.hostABI
        guard major == host.major, minor <= host.minor else {
            throw .abiMismatch(path: path, plugin: "\(major).\(minor)", host: "\(host.major).\(host.minor)")
        }
        guard (descriptorMinimum...descriptorSize).contains(size) else {
            throw bad("struct_size", "\(size) is outside \(descriptorMinimum)...\(descriptorSize) (ABI 1.0's size to ABI \(host.major).\(host.minor)'s)")
        }
        guard let bytes = memory.read(address, count: size) else {
            throw bad("struct_size", "the \(size) bytes at \(hex(address)) are not all readable")
        }
        let p = prefix(bytes, into: veneer_plugin_descriptor())

        guard let name = try string(p.name, "name", limit: maxNameBytes, memory, bad) else { throw bad("name", "is NULL") }
        guard PluginLibrary.isValidPluginName(name) else { throw bad("name", "'\(name)' is not [a-z][a-z0-9_-]*") }
        let version = try string(p.version, "version", limit: maxVersionBytes, memory, bad) ?? "unknown"
        let summary = try string(p.summary, "summary", limit: maxSummaryBytes, memory, bad) ?? ""
        let kind: PluginInfo.Kind = switch p.kind {
        case VENEER_KIND_EMULATED.rawValue: .emulated
        case VENEER_KIND_SYNTHETIC.rawValue: .synthetic
        case VENEER_KIND_PASSTHROUGH.rawValue: .passthrough
        default: throw bad("kind", "\(p.kind) is not 1 (emulated), 2 (synthetic) or 3 (passthrough)")
        }
        let knownFlags = UInt32(VENEER_PLUGIN_CONCURRENT)
        guard p.flags & ~knownFlags == 0 else { throw bad("flags", "\(hex(p.flags)) sets bits this ABI does not define") }
        try checkCallbacks(p, isCode: isCode, bad)
        let parameters = try readParameters(p, memory, bad)
        let info = PluginInfo(
            name: name, version: version, summary: summary, kind: kind, abiMajor: major, abiMinor: minor,
            stateVersion: p.state_version, concurrent: p.flags & knownFlags != 0, parameters: parameters)
        return (p, info)
    }

    private typealias Refusal = (String, String) -> PluginLoadError

    /// create and destroy are required; every callback given must point at loaded code.
    private static func checkCallbacks(_ p: veneer_plugin_descriptor, isCode: (UInt) -> Bool, _ bad: Refusal) throws(PluginLoadError) {
        func address<F>(_ f: F?) -> UInt? { f.map { unsafeBitCast($0, to: UInt.self) } }
        let callbacks: [(String, UInt?)] = [
            ("create", address(p.create)), ("reset", address(p.reset)), ("start", address(p.start)),
            ("stop", address(p.stop)), ("destroy", address(p.destroy)), ("io", address(p.io)),
            ("timer", address(p.timer)), ("fd_ready", address(p.fd_ready)), ("work", address(p.work)),
            ("save", address(p.save)), ("load", address(p.load)), ("vmbus_opened", address(p.vmbus_opened)),
            ("vmbus_signalled", address(p.vmbus_signalled)), ("vmbus_closed", address(p.vmbus_closed)),
            ("pci_config", address(p.pci_config)),
        ]
        for (name, value) in callbacks {
            guard let value else {
                if name == "create" || name == "destroy" { throw bad(name, "is NULL; create and destroy are required") }
                continue
            }
            guard isCode(value) else { throw bad(name, "\(hex(value)) is not in the code of any loaded object") }
        }
    }

    private static func readParameters(_ p: veneer_plugin_descriptor, _ memory: PluginMemory, _ bad: Refusal)
        throws(PluginLoadError) -> [ParameterSchema]
    {
        let count = Int(p.param_count)
        guard count > 0 else { return [] }
        guard count <= maxParameters else { throw bad("param_count", "\(count) exceeds \(maxParameters)") }
        let stride = Int(p.param_spec_size)
        guard (specMinimum...specSize).contains(stride), stride % 8 == 0 else {
            throw bad("param_spec_size", "\(stride) is not a multiple of 8 in \(specMinimum)...\(specSize) (a veneer_param_spec with or without its reserved tail)")
        }
        guard let base = p.params.map({ UInt(bitPattern: $0) }) else { throw bad("params", "is NULL but param_count is \(count)") }
        return try readSpecs(at: base, count: count, stride: stride, field: "params", group: nil, p, memory, bad)
    }

    /// `count` specs of `stride` bytes at `base`: the descriptor's table, or a group's members
    /// (`group` names the group; its members may not be groups).
    private static func readSpecs(at base: UInt, count: Int, stride: Int, field table: String, group: String?,
                                  _ p: veneer_plugin_descriptor, _ memory: PluginMemory, _ bad: Refusal)
        throws(PluginLoadError) -> [ParameterSchema]
    {
        guard let bytes = memory.read(base, count: count * stride) else {
            throw bad(table, "the \(count) x \(stride) bytes at \(hex(base)) are not all readable")
        }
        var schemas: [ParameterSchema] = []
        for i in 0..<count {
            let spec = prefix(Array(bytes[i * stride..<(i + 1) * stride]), into: veneer_param_spec())
            let field = "\(table)[\(i)]"
            guard (specMinimum...specSize).contains(Int(spec.struct_size)) else {
                throw bad("\(field).struct_size", "\(spec.struct_size) is outside \(specMinimum)...\(specSize)")
            }
            guard let name = try string(spec.name, "\(field).name", limit: maxNameBytes, memory, bad) else {
                throw bad("\(field).name", "is NULL")
            }
            guard PluginLibrary.isValidParameterName(name) else { throw bad("\(field).name", "'\(name)' is not [a-z][a-z0-9_]*") }
            guard !schemas.contains(where: { $0.name == name }) else {
                throw bad("\(field).name", "'\(name)' is repeated\(group.map { " in group '\($0)'" } ?? "")")
            }
            let kind: ParameterSchema.Kind
            switch spec.type {
            case VENEER_PARAM_BOOL.rawValue: kind = .bool
            case VENEER_PARAM_INT.rawValue:
                guard spec.min <= spec.max else { throw bad("\(field).min", "\(spec.min) is greater than max \(spec.max)") }
                kind = try integerKind(spec, abiMinor: p.abi_minor, field: field, memory, bad)
            case VENEER_PARAM_STRING.rawValue: kind = .string
            case VENEER_PARAM_PATH.rawValue where p.abi_minor >= pathMinor:
                let text = try string(spec.choices, "\(field).choices", limit: maxValueBytes, memory, bad) ?? ""
                let words = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                guard text.isEmpty || (!words.contains("") && Set(words).count == words.count) else {
                    throw bad("\(field).choices", "'\(text)' is not a comma-separated list of distinct, non-empty words")
                }
                kind = .path(words: text.isEmpty ? [] : words)
            case VENEER_PARAM_CHOICE.rawValue:
                let text = try string(spec.choices, "\(field).choices", limit: maxValueBytes, memory, bad) ?? ""
                let choices = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                guard !text.isEmpty, !choices.contains(""), Set(choices).count == choices.count else {
                    throw bad("\(field).choices", "'\(text)' is not a comma-separated list of distinct, non-empty choices")
                }
                kind = .choice(choices)
            case VENEER_PARAM_GROUP.rawValue where p.abi_minor >= groupMinor:
                if let group { throw bad("\(field).type", "6 (group) inside group '\(group)': groups do not nest") }
                kind = try groupKind(spec, name: name, field: field, stride: stride, p, memory, bad)
            default:
                let known = p.abi_minor >= groupMinor ? ", 4 (choice), 5 (path) or 6 (group)"
                    : p.abi_minor >= pathMinor ? ", 4 (choice) or 5 (path); 6 (group) needs ABI 1.\(groupMinor)"
                    : " or 4 (choice); 5 (path) needs ABI 1.\(pathMinor), 6 (group) ABI 1.\(groupMinor)"
                throw bad("\(field).type", "\(spec.type) is not 1 (bool), 2 (int), 3 (string)\(known)")
            }
            let defaultText = try string(spec.default_value, "\(field).default_value", limit: maxValueBytes, memory, bad)
            if case .group = kind, let defaultText {
                throw bad("\(field).default_value", "'\(defaultText)' on a group: must be NULL (an absent group is zero tables)")
            }
            let schema = ParameterSchema(
                name: name, doc: try string(spec.doc, "\(field).doc", limit: maxDocBytes, memory, bad) ?? "", kind: kind,
                defaultText: defaultText)
            if let text = schema.defaultText {
                do { _ = try ParameterValidation.parse(text: text, for: schema) } catch {
                    throw bad("\(field).default_value", "\(error)")
                }
            }
            schemas.append(schema)
        }
        return schemas
    }

    /// A group: its table-count bounds and its members (read through the same checks as the
    /// descriptor's own table, at the descriptor's stride).
    private static func groupKind(_ spec: veneer_param_spec, name: String, field: String, stride: Int,
                                  _ p: veneer_plugin_descriptor, _ memory: PluginMemory, _ bad: Refusal)
        throws(PluginLoadError) -> ParameterSchema.Kind
    {
        guard stride >= groupSpecMinimum else {
            throw bad("param_spec_size", "\(stride) does not reach a group's members and member_count (a group needs \(groupSpecMinimum))")
        }
        guard Int(spec.struct_size) >= groupSpecMinimum else {
            throw bad("\(field).struct_size", "\(spec.struct_size) does not reach a group's members and member_count (a group needs \(groupSpecMinimum))")
        }
        guard spec.min >= 0, spec.min <= spec.max else {
            throw bad("\(field).min", "\(spec.min) tables: must be 0...max (\(spec.max))")
        }
        guard spec.max <= maxGroupTables else { throw bad("\(field).max", "\(spec.max) tables exceeds \(maxGroupTables)") }
        let count = Int(spec.member_count)
        guard (1...maxGroupMembers).contains(count) else {
            throw bad("\(field).member_count", "\(count) is outside 1...\(maxGroupMembers)")
        }
        guard let base = spec.members.map({ UInt(bitPattern: $0) }) else {
            throw bad("\(field).members", "is NULL but member_count is \(count)")
        }
        let members = try readSpecs(at: base, count: count, stride: stride, field: "\(field).members", group: name, p, memory, bad)
        return .group(min: Int(spec.min), max: Int(spec.max), members: members)
    }

    /// An integer range, narrowed to the listed values when a plugin of ABI 1.6 or later gives
    /// `choices`; older plugins' `choices` on an integer meant nothing and is not read.
    private static func integerKind(_ spec: veneer_param_spec, abiMinor: UInt16, field: String, _ memory: PluginMemory,
                                    _ bad: Refusal) throws(PluginLoadError) -> ParameterSchema.Kind
    {
        guard abiMinor >= integerChoicesMinor,
              let text = try string(spec.choices, "\(field).choices", limit: maxValueBytes, memory, bad)
        else { return .int(min: spec.min, max: spec.max) }
        var values: [Int64] = []
        for word in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let v = Int64(word), v >= spec.min, v <= spec.max, !values.contains(v) else {
                throw bad("\(field).choices", "'\(word)' is not a distinct integer within \(spec.min)...\(spec.max)")
            }
            values.append(v)
        }
        return .intChoice(values)
    }

    /// A C string the plugin points at, or nil for NULL: NUL-terminated within `limit` bytes, in
    /// readable memory, UTF-8 and one line (no control characters).
    private static func string(_ pointer: UnsafePointer<CChar>?, _ field: String, limit: Int, _ memory: PluginMemory,
                               _ bad: Refusal) throws(PluginLoadError) -> String?
    {
        guard let pointer else { return nil }
        let address = UInt(bitPattern: pointer)
        let bytes = memory.readPrefix(address, count: limit + 1)
        guard let end = bytes.firstIndex(of: 0) else {
            if bytes.isEmpty { throw bad(field, "points at \(hex(address)), which is not readable memory") }
            if bytes.count <= limit { throw bad(field, "runs into unreadable memory after \(bytes.count) bytes, before its NUL") }
            throw bad(field, "is not NUL-terminated within \(limit) bytes")
        }
        guard let text = String(validating: bytes[..<end], as: UTF8.self) else { throw bad(field, "is not UTF-8") }
        if let control = bytes[..<end].firstIndex(where: { $0 < 0x20 || $0 == 0x7f }) {
            throw bad(field, "contains control character \(hex(bytes[control])) at byte \(control)")
        }
        return text
    }

    /// A `T` from `bytes` (at most `T`'s own size), the rest as in `zero`.
    static func prefix<T>(_ bytes: [UInt8], into zero: T) -> T {
        var value = zero
        withUnsafeMutableBytes(of: &value) { dst in
            bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src.prefix(dst.count))) }
        }
        return value
    }

    private static func le32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
}
