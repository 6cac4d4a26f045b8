#if canImport(Glibc)
import Glibc
#endif

/// Finds plugins by name in a search path: `$VENEER_PLUGIN_PATH` (colon-separated), then the
/// directory of the running executable (where `swift build` puts the plugins), then
/// `<executable>/../lib/veneer/plugins` (an installed layout).
public struct PluginRegistry: Sendable {
    public var searchPaths: [String]

    public init(searchPaths: [String]) { self.searchPaths = searchPaths }

    public static func standard(environment: [String: String] = currentEnvironment()) -> PluginRegistry {
        var paths: [String] = []
        if let env = environment["VENEER_PLUGIN_PATH"] {
            paths += env.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        if let exeDir = executableDirectory() {
            paths.append(exeDir)
            paths.append(exeDir + "/../lib/veneer/plugins")
        }
        return PluginRegistry(searchPaths: paths)
    }

    public static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { result[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return result
    }

    public static func executableDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let path = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }

    /// The file for plugin `name`: `lib<name>.so` or `<name>.so` in the first directory that has one.
    /// A name the descriptor's rule forbids (`/`, `..`, ...) is refused before any file is touched.
    public func locate(_ name: String) throws(PluginLoadError) -> String {
        guard PluginLibrary.isValidPluginName(name) else { throw .invalidName(name: name) }
        for dir in searchPaths {
            for file in ["lib\(name).so", "\(name).so"] {
                let path = "\(dir)/\(file)"
                if access(path, R_OK) == 0 { return path }
            }
        }
        throw .notFound(name: name, searched: searchPaths)
    }

    /// Every `.so` file in the search path, directory by directory, sorted within each.
    public func candidates() -> [String] {
        var paths: [String] = []
        for dir in searchPaths {
            guard let d = opendir(dir) else { continue }
            defer { closedir(d) }
            var names: [String] = []
            while let entry = readdir(d) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name.hasSuffix(".so") { names.append(name) }
            }
            paths += names.sorted().map { "\(dir)/\($0)" }
        }
        return paths
    }

    /// Every loadable plugin in the search path (first of each name wins); files that are not
    /// Veneer plugins are skipped, broken plugins are reported. In this process: a plugin that
    /// crashes while loading ends it (`veneer plugins` loads each file in a child instead).
    public func all() -> (plugins: [PluginLibrary], problems: [PluginLoadError]) {
        var seen = Set<String>(), plugins: [PluginLibrary] = [], problems: [PluginLoadError] = []
        for path in candidates() {
            do {
                let library = try PluginLibrary(path: path)
                if seen.insert(library.info.name).inserted { plugins.append(library) }
            } catch {
                if case .missingEntry = error { continue }
                problems.append(error)
            }
        }
        return (plugins, problems)
    }
}
