import AsyncHTTPClient
import Foundation
import Testing
import VeneerManagement
@testable import VeneerdAPI

/// The socket file's mode, stale and live sockets, and refusal by peer credentials.
@Suite struct SocketSecurityTests {
    static func mode(_ path: String) throws -> (mode: mode_t, gid: gid_t) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw TestFailure("stat \(path): \(errno)") }
        return (info.st_mode & 0o777, info.st_gid)
    }

    @Test func socketIsOwnerOnlyByDefault() async throws {
        try await APIHarness.with { api in
            let mode = try Self.mode(api.socketPath).mode
            #expect(mode == 0o600)
        }
    }

    @Test func socketGroupMakesItGroupReadable() async throws {
        let group = getgid()
        try await APIHarness.with(group: group) { api in
            let (mode, gid) = try Self.mode(api.socketPath)
            #expect(mode == 0o660)
            #expect(gid == group)
        }
    }

    /// A socket file left by a dead veneerd (bound, nobody listening) is replaced.
    @Test func staleSocketIsReplaced() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/stale.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        close(fd)
        #expect(bound == 0)
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(!SocketFile.isLive(path))
        try SocketFile.prepare(path)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func liveSocketAndOtherFilesAreRefused() async throws {
        try await APIHarness.with { api in
            #expect(SocketFile.isLive(api.socketPath))
            #expect(throws: SocketFile.Error.self) { try SocketFile.prepare(api.socketPath) }
        }
        let directory = try TemporaryDirectory()
        let file = directory.path + "/not-a-socket"
        _ = FileManager.default.createFile(atPath: file, contents: Data("keep me".utf8))
        #expect(throws: SocketFile.Error.self) { try SocketFile.prepare(file) }
        #expect(FileManager.default.contents(atPath: file) == Data("keep me".utf8))
        #expect(throws: SocketFile.Error.self) { try SocketFile.prepare(directory.path + "/" + String(repeating: "s", count: 120)) }
    }

    /// SO_PEERCRED is read on the real connection: a policy that does not include this
    /// process's uid closes the connection before any request is answered.
    @Test func peersWithAnotherUIDAreRefused() async throws {
        let notUs = getuid() &+ 4242
        try await APIHarness.with(policy: PeerPolicy(allowedUIDs: [notUs])) { api in
            await #expect(throws: (any Error).self) { _ = try await api.request(.GET, "/v1") }
            #expect(await api.manager.vms.isEmpty)
        }
        try await APIHarness.with(policy: PeerPolicy(allowedUIDs: [getuid()])) { api in
            let reply = try await api.request(.GET, "/v1")
            #expect(reply.status == 200)
        }
    }

    /// The same refusal for a real process of another uid (needs root and setpriv).
    @Test func anotherUserIsRefusedEvenWithGroupAccess() async throws {
        guard getuid() == 0, let setpriv = LoopbackForwarder.which("setpriv"), let curl = LoopbackForwarder.which("curl") else {
            print("SKIPPED: needs root, setpriv and curl to connect as another uid")
            return
        }
        let group = getgid()
        try await APIHarness.with(group: group) { api in
            // The socket is 0660 root:group and its directory searchable; the other user joins the
            // group, so only SO_PEERCRED stops it.
            #expect(chmod(api.state.path, 0o711) == 0)
            let (status, output) = try Self.run(setpriv, ["--reuid", "65534", "--regid", "\(group)", "--clear-groups", curl,
                                                          "-sS", "--max-time", "10", "--unix-socket", api.socketPath, "http://localhost/v1"])
            #expect(status != 0, "curl as uid 65534 got an answer: \(output)")
            #expect(!output.contains("stateDirectory"))
            let (ownStatus, ownOutput) = try Self.run(curl, ["-sS", "--max-time", "10", "--unix-socket", api.socketPath, "http://localhost/v1"])
            #expect(ownStatus == 0 && ownOutput.contains("stateDirectory"), "\(ownOutput)")
        }
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
