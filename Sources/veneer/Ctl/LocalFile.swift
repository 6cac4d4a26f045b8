import Foundation

/// Reading the files ctl sends (a config to define, a file to copy): a regular file of bounded
/// size, with the system's reason when it cannot be read.
enum LocalFile {
    static func read(_ path: String, limit: Int, what: String) throws(CtlFailure) -> Data {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw CtlFailure(.noInput, "\(path): cannot read the \(what): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw CtlFailure(.noInput, "\(path): the \(what) is not a regular file")
        }
        guard info.st_size <= limit else {
            throw CtlFailure(.noInput, "\(path): the \(what) is \(info.st_size) bytes, more than the \(limit) allowed")
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CtlFailure(.noInput, "\(path): cannot read the \(what): \(error.localizedDescription)")
        }
    }
}
