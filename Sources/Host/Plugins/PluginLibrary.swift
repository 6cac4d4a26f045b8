import VeneerPluginABI
#if canImport(Glibc)
import Glibc
#endif

/// A loaded plugin shared object and its checked descriptor.
///
/// Unsafe-pointer invariants: the library is never unloaded (a plugin's runtime, Swift's included,
/// may not survive dlclose). The descriptor is never read through `descriptor`: `DescriptorReader`
/// copies it out (as far as its checked struct_size reaches) through `PluginMemory`, which turns a
/// bad address into an error, and checks every field before `fields` and `info` exist.
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
        // Loading runs the plugin's constructors and its entry point: a crash there names the file.
        let site = CrashSites(["plugin \(path) crashed while loading"])
        let address: UInt = try PluginCrashGuard.marked(site[0]) { () throws(PluginLoadError) -> UInt in
            guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
                throw .cannotOpen(path: path, reason: dlerror().map { String(cString: $0) } ?? "unknown dlopen error")
            }
            guard let symbol = dlsym(handle, VENEER_PLUGIN_ENTRY_NAME) else { throw .missingEntry(path: path) }
            let entry = unsafeBitCast(symbol, to: veneer_plugin_entry_fn.self)
            guard let descriptor = entry() else { throw .malformed(path: path, reason: "the entry returned NULL") }
            return UInt(bitPattern: descriptor)
        }
        (fields, info) = try DescriptorReader.read(at: address, path: path)
        guard let descriptor = UnsafePointer<veneer_plugin_descriptor>(bitPattern: address) else {
            throw .malformed(path: path, reason: "the entry returned NULL")
        }
        self.descriptor = descriptor
    }

    /// A `T` from the first `size` bytes at `base` (at most `T`'s own size), the rest as in `zero`:
    /// for structs a plugin passes to a host service from inside a callback.
    static func prefix<T>(of base: UnsafeRawPointer, size: Int, into zero: T) -> T {
        var value = zero
        withUnsafeMutableBytes(of: &value) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: base, count: max(0, min(size, dst.count))))
        }
        return value
    }

    /// A plugin name by the descriptor's rule: what `plugin = "..."` may say, checked before any
    /// file is looked for (so `/` and `..` never reach a path).
    public static func isValidPluginName(_ s: String) -> Bool {
        isValidName(s) && s.utf8.count <= DescriptorReader.maxNameBytes
    }

    /// [a-z][a-z0-9_-]*: plugin names and device ids.
    public static func isValidName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, ("a"..."z").contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }
    }

    static func isValidParameterName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, ("a"..."z").contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }
}
