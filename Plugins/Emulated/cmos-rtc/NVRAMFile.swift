import VeneerPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// The file behind the `nvram` parameter: a 128-byte image of the CMOS, indexed like the
/// registers. Only the NVRAM bytes mean anything; the clock and control registers are written as
/// zero (the clock comes from `start`), so the file changes only when the guest's data does.
///
/// Unsafe-pointer invariant: `read` and `write` pass the kernel a pointer `done` bytes into a
/// buffer of `size` bytes with a length of `size - done`, and `done` only grows by what the
/// kernel reports, so no access leaves the buffer.
struct NVRAMFile {
    static let size = RTCRegister.count

    let path: String
    private let temporaryPath: String

    /// Checks that the file can be written later: its directory must exist and be writable.
    init(path: String) throws(PluginError) {
        guard !path.isEmpty else { throw PluginError("nvram: empty path") }
        self.path = path
        temporaryPath = path + ".tmp"
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        guard access(directory.isEmpty ? "/" : directory, W_OK) == 0 else {
            throw PluginError("nvram '\(path)': directory '\(directory)' is not writable: \(errnoText())")
        }
    }

    /// The stored image, or nil when the file does not exist yet.
    func read() throws(PluginError) -> [UInt8]? {
        let fd: Int32
        do { fd = try HostFile.openRegular(path, flags: O_RDONLY) } catch {
            if error == .failed(errno: ENOENT) { return nil }
            throw PluginError("nvram '\(path)': cannot open: \(error)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw PluginError("nvram '\(path)': cannot stat: \(errnoText())") }
        guard info.st_size == Self.size else {
            throw PluginError("nvram '\(path)': \(info.st_size) bytes, expected exactly \(Self.size)")
        }
        var image = [UInt8](repeating: 0, count: Self.size)
        var done = 0
        while done < Self.size {
            let n = image.withUnsafeMutableBytes { buffer in
                guard let base = buffer.baseAddress else { return -1 }
                return Glibc.read(fd, base + done, Self.size - done)
            }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                throw PluginError("nvram '\(path)': read failed after \(done) bytes: \(n < 0 ? errnoText() : "end of file")")
            }
            done += n
        }
        return image
    }

    /// Replaces the file atomically: a complete temporary file, synced, renamed over it.
    func write(_ image: [UInt8]) throws(PluginError) {
        // O_NOFOLLOW: the temporary file is ours; a link planted there must not redirect the write.
        let fd: Int32
        do { fd = try HostFile.openRegular(temporaryPath, flags: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW) } catch {
            throw PluginError("nvram '\(path)': cannot create '\(temporaryPath)': \(error)")
        }
        var done = 0
        var failure: String?
        while done < image.count {
            let n = image.withUnsafeBytes { buffer in
                guard let base = buffer.baseAddress else { return -1 }
                return Glibc.write(fd, base + done, image.count - done)
            }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                failure = "write failed: \(errnoText())"
                break
            }
            done += n
        }
        if failure == nil, fsync(fd) != 0 { failure = "fsync failed: \(errnoText())" }
        if close(fd) != 0, failure == nil { failure = "close failed: \(errnoText())" }
        if failure == nil, rename(temporaryPath, path) != 0 { failure = "rename failed: \(errnoText())" }
        if let failure {
            unlink(temporaryPath)
            throw PluginError("nvram '\(path)': \(failure)")
        }
    }
}

