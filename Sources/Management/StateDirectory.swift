import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// veneerd's state directory: `<root>/vms/<name>/` per VM with `definition.json`, `config.toml`,
/// `run/` (the worker's control directory) and `worker.log`. Every directory is 0700 and every
/// file 0600; files are replaced atomically (temporary file, fsync, rename, fsync of the
/// directory) so a crash leaves the old or the new content, never a torn one. A path is only
/// ever formed from a name `VMName.validate` accepted.
struct StateDirectory: Sendable {
    let root: String

    static let definitionFile = "definition.json"
    static let configFile = "config.toml"
    static let runDirectory = "run"
    static let logFile = "worker.log"

    /// Creates (0700) the root and `vms/` if missing; the root must be an absolute path.
    init(root: String) throws(ManagementError) {
        guard root.hasPrefix("/") else { throw .invalid(field: "stateDirectory", reason: "'\(root)' is not an absolute path") }
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        try Self.makeDirectory(self.root)
        try Self.makeDirectory(vmsPath)
        try Self.makeDirectory(stagingPath)
    }

    var vmsPath: String { root + "/vms" }
    /// Scratch space for configs being checked before they are defined.
    var stagingPath: String { root + "/staging" }

    func vmPath(_ name: String) throws(ManagementError) -> String {
        try VMName.validate(name)
        return vmsPath + "/" + name
    }

    func path(_ name: String, _ file: String) throws(ManagementError) -> String { try vmPath(name) + "/" + file }

    /// The names of the directories under `vms/` that are valid VM names (anything else is ignored).
    func vmNames() throws(ManagementError) -> [String] {
        guard let dir = opendir(vmsPath) else { throw .host("cannot list '\(vmsPath)': \(Self.errnoText())") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name != ".", name != "..", (try? VMName.validate(name)) != nil else { continue }
            names.append(name)
        }
        return names.sorted()
    }

    // MARK: file primitives

    static func makeDirectory(_ path: String) throws(ManagementError) {
        if mkdir(path, 0o700) != 0 {
            guard errno == EEXIST else { throw .host("cannot create directory '\(path)': \(errnoText())") }
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw .host("'\(path)' exists and is not a directory")
            }
        }
    }

    /// Writes `bytes` to `path` atomically (mode 0600): temporary file, fsync, rename, fsync of
    /// the containing directory.
    static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws(ManagementError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .host("cannot create '\(temporary)': \(errnoText())") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { raw in Glibc.write(fd, raw.baseAddress.map { $0 + done }, bytes.count - done) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let text = errnoText()
                close(fd)
                unlink(temporary)
                throw .host("cannot write '\(temporary)': \(text)")
            }
            done += n
        }
        guard fsync(fd) == 0 else {
            let text = errnoText()
            close(fd)
            unlink(temporary)
            throw .host("cannot fsync '\(temporary)': \(text)")
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let text = errnoText()
            unlink(temporary)
            throw .host("cannot rename '\(temporary)' to '\(path)': \(text)")
        }
        syncDirectory(of: path)
    }

    /// Makes a rename or unlink in the directory durable (best effort: a failure here leaves the
    /// change in the page cache, which a crash of veneerd alone does not lose).
    static func syncDirectory(of path: String) {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let fd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// The whole file, or nil when it does not exist; at most `limit` bytes.
    static func read(_ path: String, limit: Int = 4 << 20) throws(ManagementError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw .host("cannot open '\(path)': \(errnoText())")
        }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw .host("cannot read '\(path)': \(errnoText())") }
            if n == 0 { return result }
            result += buffer[0..<n]
            guard result.count <= limit else { throw .host("'\(path)' is larger than \(limit) bytes") }
        }
    }

    /// Removes a directory tree that veneerd created (no symlinks are followed: they are unlinked).
    static func removeTree(_ path: String) throws(ManagementError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw .host("cannot stat '\(path)': \(errnoText())")
        }
        if info.st_mode & S_IFMT == S_IFDIR {
            guard let dir = opendir(path) else { throw .host("cannot list '\(path)': \(errnoText())") }
            var children: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name != "." && name != ".." { children.append(name) }
            }
            closedir(dir)
            for child in children { try removeTree(path + "/" + child) }
            guard rmdir(path) == 0 else { throw .host("cannot remove '\(path)': \(errnoText())") }
        } else {
            guard unlink(path) == 0 || errno == ENOENT else { throw .host("cannot remove '\(path)': \(errnoText())") }
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    static func errnoText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code)) + " (errno \(code))"
    }
}
