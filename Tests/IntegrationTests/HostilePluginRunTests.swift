import Foundation
import Testing
import VeneerHost

/// `veneer run` and `veneer check` against plugins that break their promises
/// (Tests/Fixtures/plugins/hostile.c) and configs naming plugins the rule forbids.
enum HostilePlugin {
    /// Compiles the fixture with `defines` into `directory/file`.
    static func build(_ defines: [String], into directory: String, file: String = "libhostile.so") throws -> String {
        let output = "\(directory)/\(file)"
        let r = try VeneerProcess.run("/usr/bin/cc", ["-shared", "-fPIC", "-O2", "-I\(VeneerProcess.repoRoot)/PluginSDK/include"]
            + defines.map { "-D" + $0 } + ["-o", output, "\(VeneerProcess.repoRoot)/Tests/Fixtures/plugins/hostile.c"])
        guard r.status == 0 else { throw TestFailure("cc \(defines) failed: \(r.stderr)") }
        return output
    }

    static func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("veneer-hostile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func lines(_ text: String) -> [Substring] { text.split(separator: "\n") }
}

/// No VM starts in these: plugins are resolved before KVM is touched.
struct HostilePluginConfigTests {
    /// `plugin = "../evil"` with the search path at dir/search would be dir/evil.so: it must be
    /// refused by name, and the file's constructor must never run (it would create the marker).
    @Test func aNameWithDotDotNeverLoadsTheFileBehindIt() throws {
        let dir = try HostilePlugin.directory()
        try FileManager.default.createDirectory(atPath: "\(dir)/search", withIntermediateDirectories: true)
        let marker = "\(dir)/constructor-ran"
        _ = try HostilePlugin.build(["MARKER=\"\(marker)\""], into: dir, file: "evil.so")
        let config = try VeneerProcess.config("""
            [boot]
            image = "x.bin"
            [[device]]
            id = "dev"
            plugin = "../evil"
            """)
        let r = try VeneerProcess.veneer(["check", config, "--plugin-path", "\(dir)/search"])
        #expect(r.status == SetupExitStatus.badConfig)
        #expect(HostilePlugin.lines(r.stderr) == ["veneer: \(config): device[0].plugin: '../evil' is not a plugin name ([a-z][a-z0-9_-]*, at most 64 bytes); give the device a `path` to load a file by its path"])
        #expect(!FileManager.default.fileExists(atPath: marker), "the .so outside the search path was loaded")

        // The same file through an explicit path does load (so the marker can tell).
        let explicit = try VeneerProcess.config("""
            [boot]
            image = "x.bin"
            [[device]]
            plugin = "hostile"
            path = "\(dir)/evil.so"
            """)
        let ok = try VeneerProcess.veneer(["check", explicit])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(FileManager.default.fileExists(atPath: marker))
    }

    /// A file found by name whose descriptor says another name: the error names `plugin`, the key
    /// written, and `path` only when the config gave one.
    @Test func aNameMismatchNamesTheKeyThatWasWritten() throws {
        let dir = try HostilePlugin.directory()
        let file = try HostilePlugin.build([], into: dir, file: "libother.so")
        let byName = try VeneerProcess.config("[boot]\nimage = \"x.bin\"\n[[device]]\nplugin = \"other\"\n")
        let r = try VeneerProcess.veneer(["check", byName, "--plugin-path", dir])
        #expect(r.status == SetupExitStatus.badConfig)
        #expect(HostilePlugin.lines(r.stderr) == ["veneer: \(byName): device[0].plugin: \(file) is plugin 'hostile', not 'other'"])
        let byPath = try VeneerProcess.config("[boot]\nimage = \"x.bin\"\n[[device]]\nplugin = \"other\"\npath = \"\(file)\"\n")
        let p = try VeneerProcess.veneer(["check", byPath])
        #expect(HostilePlugin.lines(p.stderr) == ["veneer: \(byPath): device[0].path: \(file) is plugin 'hostile', not 'other'"])
    }

    @Test(arguments: [(define: "PARAM_STRIDE=0x100000", field: "param_spec_size"), (define: "PARAM_COUNT=100000", field: "param_count"),
                      (define: "STRUCT_SIZE=0x7fffffff", field: "struct_size"), (define: "NULL_CALLBACKS", field: "create")])
    func runRefusesABrokenDescriptorWithOneLine(define: String, field: String) throws {
        let dir = try HostilePlugin.directory()
        let file = try HostilePlugin.build([define], into: dir)
        let config = try VeneerProcess.config("""
            [boot]
            image = "{root}/examples/guests/build/hello.bin"
            mode = "real"
            [[device]]
            id = "dev"
            plugin = "hostile"
            """)
        let r = try VeneerProcess.veneer(["run", config, "--plugin-path", dir])
        #expect(r.status == SetupExitStatus.plugin)
        let lines = HostilePlugin.lines(r.stderr)
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(lines.first?.hasPrefix("veneer: \(config): device[0] 'dev': plugin \(file) has a malformed descriptor: \(field): ") == true, "\(r.stderr)")
    }
}

/// A plugin crashing inside a callback of a running VM.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct HostilePluginCrashTests {
    func run(_ defines: [String]) throws -> VeneerProcess.Result {
        let dir = try HostilePlugin.directory()
        _ = try HostilePlugin.build(defines, into: dir)
        // hello.bin programs the UART at 0x3f8 first: the hostile device sits there instead.
        let config = try VeneerProcess.config("""
            memory = "16M"
            [boot]
            image = "{root}/examples/guests/build/hello.bin"
            mode = "real"
            load_address = 0x7c00
            [[device]]
            id = "com1"
            plugin = "hostile"
            port = 0x3f8
            [[device]]
            plugin = "debug-exit"
            """)
        return try VeneerProcess.veneer(["run", config, "--plugin-path", dir], timeout: 60)
    }

    @Test(arguments: [(kind: 1, signal: "SIGSEGV"), (kind: 2, signal: "SIGFPE"), (kind: 3, signal: "SIGABRT"), (kind: 4, signal: "SIGILL")])
    func aCrashInIONamesDevicePluginAndCallbackAndExits71(kind: Int, signal: String) throws {
        let r = try run(["CRASH_IN_IO=\(kind)"])
        #expect(r.status == 71)
        #expect(r.stderr == "veneer: device 'com1' (plugin hostile) crashed in io (\(signal))\n")
    }

    @Test func aCrashInCreateIsNamedToo() throws {
        let r = try run(["CRASH_IN_CREATE"])
        #expect(r.status == 71)
        #expect(r.stderr == "veneer: device 'com1' (plugin hostile) crashed in create (SIGSEGV)\n")
    }
}
