import VeneerPluginABI
#if canImport(Glibc)
import Glibc
#endif

/// A loaded plugin shared object and its checked descriptor.
///
/// Unsafe-pointer invariants: the library is never unloaded (a plugin's runtime, Swift's included,
/// may not survive dlclose), so `descriptor` and every string and table it points to stay valid for
/// the process. Descriptor fields are read only when the plugin's `struct_size` covers them, and
/// tables are walked with the element size the plugin declared: a struct is never loaded whole
/// from plugin memory, since an older plugin's copy may end before ours does.
public final class PluginLibrary: @unchecked Sendable {
    public static let hostABI = (major: UInt16(VENEER_ABI_MAJOR), minor: UInt16(VENEER_ABI_MINOR))

    public let path: String
    /// The plugin's own descriptor: it may be shorter than ours, so never load it whole (`fields`).
    public let descriptor: UnsafePointer<veneer_plugin_descriptor>
    /// The descriptor as far as the plugin's struct_size reaches, later fields zero: the copy to
    /// read callbacks from.
    public let fields: veneer_plugin_descriptor
    public let info: PluginInfo

    public init(path: String) throws(PluginLoadError) {
        self.path = path
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw .cannotOpen(path: path, reason: dlerror().map { String(cString: $0) } ?? "unknown dlopen error")
        }
        guard let symbol = dlsym(handle, VENEER_PLUGIN_ENTRY_NAME) else { throw .missingEntry(path: path) }
        let entry = unsafeBitCast(symbol, to: veneer_plugin_entry_fn.self)
        guard let descriptor = entry() else { throw .malformed(path: path, reason: "the entry returned NULL") }
        self.descriptor = descriptor
        let size = Int(UnsafeRawPointer(descriptor).load(as: UInt32.self))
        fields = Self.prefix(of: UnsafeRawPointer(descriptor), size: size, into: veneer_plugin_descriptor())
        info = try Self.read(fields, size: size, path: path)
    }

    /// A `T` from the first `size` bytes at `base` (at most `T`'s own size), the rest as in `zero`.
    static func prefix<T>(of base: UnsafeRawPointer, size: Int, into zero: T) -> T {
        var value = zero
        withUnsafeMutableBytes(of: &value) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: base, count: max(0, min(size, dst.count))))
        }
        return value
    }

    /// The descriptor's fields as far as the plugin's struct_size reaches.
    static func read(_ p: veneer_plugin_descriptor, size: Int, path: String) throws(PluginLoadError) -> PluginInfo {
        let head = MemoryLayout<veneer_plugin_descriptor>.offset(of: \.name) ?? 8
        guard size >= head else { throw .malformed(path: path, reason: "struct_size \(size) is too small") }
        let pluginABI = "\(p.abi_major).\(p.abi_minor)"
        let hostABI = "\(hostABI.major).\(hostABI.minor)"
        guard p.abi_major == Self.hostABI.major, p.abi_minor <= Self.hostABI.minor else {
            throw .abiMismatch(path: path, plugin: pluginABI, host: hostABI)
        }
        let v10End = (MemoryLayout<veneer_plugin_descriptor>.offset(of: \.load) ?? 0) + MemoryLayout<UnsafeRawPointer>.size
        guard size >= v10End else {
            throw .malformed(path: path, reason: "struct_size \(size) is smaller than ABI 1.0's \(v10End)")
        }
        guard let namePointer = p.name else { throw .malformed(path: path, reason: "no name") }
        let name = String(cString: namePointer)
        guard Self.isValidName(name) else { throw .malformed(path: path, reason: "name '\(name)' is not [a-z][a-z0-9_-]*") }
        guard p.create != nil, p.destroy != nil else { throw .malformed(path: path, reason: "create and destroy are required") }
        let kind: PluginInfo.Kind = switch p.kind {
        case VENEER_KIND_EMULATED.rawValue: .emulated
        case VENEER_KIND_SYNTHETIC.rawValue: .synthetic
        case VENEER_KIND_PASSTHROUGH.rawValue: .passthrough
        default: throw .malformed(path: path, reason: "unknown kind \(p.kind)")
        }
        return PluginInfo(
            name: name,
            version: p.version.map { String(cString: $0) } ?? "unknown",
            summary: p.summary.map { String(cString: $0) } ?? "",
            kind: kind,
            abiMajor: p.abi_major, abiMinor: p.abi_minor,
            stateVersion: p.state_version,
            concurrent: p.flags & UInt32(VENEER_PLUGIN_CONCURRENT) != 0,
            parameters: try readParameters(p, path: path))
    }

    static let maxParameters = 256

    /// An integer range, narrowed to the listed values when a 1.3 plugin gives `choices`.
    static func integerKind(_ spec: veneer_param_spec, abiMinor: UInt16, name: String, path: String) throws(PluginLoadError) -> ParameterSchema.Kind {
        guard abiMinor >= 3, let list = spec.choices else { return .int(min: spec.min, max: spec.max) }
        var values: [Int64] = []
        for word in String(cString: list).split(separator: ",", omittingEmptySubsequences: false) {
            guard let v = Int64(word), v >= spec.min, v <= spec.max, !values.contains(v) else {
                throw .malformed(path: path, reason: "parameter \(name): choice '\(word)' is not a distinct integer within \(spec.min)...\(spec.max)")
            }
            values.append(v)
        }
        return .intChoice(values)
    }

    static func readParameters(_ p: veneer_plugin_descriptor, path: String) throws(PluginLoadError) -> [ParameterSchema] {
        guard p.param_count > 0 else { return [] }
        guard p.param_count <= maxParameters, let base = p.params else {
            throw .malformed(path: path, reason: "\(p.param_count) parameters at \(p.params == nil ? "NULL" : "a table")")
        }
        let stride = Int(p.param_spec_size)
        guard stride >= MemoryLayout<veneer_param_spec>.offset(of: \.reserved) ?? 56 else {
            throw .malformed(path: path, reason: "param_spec_size \(stride) is too small")
        }
        var schemas: [ParameterSchema] = []
        var seen = Set<String>()
        for i in 0..<Int(p.param_count) {
            let spec = prefix(of: UnsafeRawPointer(base) + i * stride, size: stride, into: veneer_param_spec())
            guard let namePointer = spec.name else { throw .malformed(path: path, reason: "parameter \(i) has no name") }
            let name = String(cString: namePointer)
            guard isValidParameterName(name), seen.insert(name).inserted else {
                throw .malformed(path: path, reason: "parameter name '\(name)' is invalid or repeated")
            }
            let kind: ParameterSchema.Kind
            switch spec.type {
            case VENEER_PARAM_BOOL.rawValue: kind = .bool
            case VENEER_PARAM_INT.rawValue:
                guard spec.min <= spec.max else { throw .malformed(path: path, reason: "parameter \(name): min > max") }
                kind = try integerKind(spec, abiMinor: p.abi_minor, name: name, path: path)
            case VENEER_PARAM_STRING.rawValue: kind = .string
            case VENEER_PARAM_PATH.rawValue where p.abi_minor >= 3:
                kind = .path(words: spec.choices.map { String(cString: $0).split(separator: ",").map(String.init) } ?? [])
            case VENEER_PARAM_CHOICE.rawValue:
                let choices = spec.choices.map { String(cString: $0).split(separator: ",").map(String.init) } ?? []
                guard !choices.isEmpty else { throw .malformed(path: path, reason: "parameter \(name) has no choices") }
                kind = .choice(choices)
            default: throw .malformed(path: path, reason: "parameter \(name) has unknown type \(spec.type)")
            }
            let schema = ParameterSchema(
                name: name, doc: spec.doc.map { String(cString: $0) } ?? "", kind: kind,
                defaultText: spec.default_value.map { String(cString: $0) })
            if let text = schema.defaultText {
                do { _ = try ParameterValidation.parse(text: text, for: schema) } catch {
                    throw .malformed(path: path, reason: "default of parameter \(name): \(error)")
                }
            }
            schemas.append(schema)
        }
        return schemas
    }

    static func isValidName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, ("a"..."z").contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }
    }

    static func isValidParameterName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, ("a"..."z").contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }
}
