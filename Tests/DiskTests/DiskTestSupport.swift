import Foundation
import VeneerDisk
#if canImport(Glibc)
import Glibc
#endif

// Synchronous I/O over a format's extents, for tests only (the real data path is DiskQueue):
// pwrite/pread each extent, then completeWrite, in the order the engine follows.

enum DiskIO {
    static func write(_ image: any DiskImage, at offset: UInt64, _ bytes: [UInt8], durable: Bool = false) throws {
        let mapping = try image.mapForWrite(offset: offset, length: UInt64(bytes.count))
        var done = 0
        for extent in mapping.extents {
            guard case .file(let fd, let fileOffset, let length) = extent else { throw TestFailure("write mapped to \(extent)") }
            let n = bytes[done..<done + Int(length)].withUnsafeBytes { pwrite(fd, $0.baseAddress, Int(length), off_t(fileOffset)) }
            guard n == Int(length) else { throw TestFailure("pwrite \(n) of \(length)") }
            done += Int(length)
        }
        guard done == bytes.count else { throw TestFailure("extents cover \(done) of \(bytes.count) bytes") }
        try image.completeWrite(mapping, durable: durable)
    }

    static func read(_ image: any DiskImage, at offset: UInt64, count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        for extent in try image.mapForRead(offset: offset, length: UInt64(count)) {
            switch extent {
            case .zero(let length): out += [UInt8](repeating: 0, count: Int(length))
            case .file(let fd, let fileOffset, let length):
                var buffer = [UInt8](repeating: 0, count: Int(length))
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(length), off_t(fileOffset)) }
                guard n >= 0 else { throw TestFailure("pread failed") }
                out += buffer
            }
        }
        guard out.count == count else { throw TestFailure("extents cover \(out.count) of \(count) bytes") }
        return out
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A fresh directory under /tmp, removed by `remove()`.
struct TempDirectory {
    let path: String
    /// `base`: /tmp by default; /dev/shm for tests that flush a lot and test ordering, not media.
    init(base: String = "/tmp") throws {
        var template = Array((base + "/veneer-disk-XXXXXX").utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { throw TestFailure("mkdtemp") }
        path = String(cString: p)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Deterministic bytes: a pattern per (seed, index) so misplaced data shows.
func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &* 7 &+ ($0 >> 9)) ^ seed }
}

/// Runs a program; (status, stdout + stderr). nil if it cannot be started.
func runTool(_ path: String, _ arguments: [String]) -> (status: Int32, output: String)? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// qemu-img's path, or nil (tests that need it print SKIPPED with the reason).
let qemuImg: String? = ["/usr/bin/qemu-img", "/usr/local/bin/qemu-img"].first { FileManager.default.isExecutableFile(atPath: $0) }

func fileBytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

func patchFile(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    try handle.write(contentsOf: Data(bytes))
}

func readFile(_ path: String, at offset: UInt64, count: Int) throws -> [UInt8] {
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    return [UInt8](try handle.read(upToCount: count) ?? Data())
}
