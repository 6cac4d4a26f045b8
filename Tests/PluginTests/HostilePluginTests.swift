import Foundation
import Testing
import VeneerHarness
import VeneerHost

/// Plugins that break the descriptor's promises (Tests/Fixtures/plugins/hostile.c, one macro per
/// broken promise) are refused with one line naming the file and the field, and a plugin that
/// crashes in a callback fails `veneer-plugin-test`'s check instead of ending the tool.
@Suite struct HostilePluginTests {
    static let source = TestSupport.repoRoot + "/Tests/Fixtures/plugins/hostile.c"

    static func plugin(_ defines: String...) throws -> String {
        try TestSupport.compilePlugin(try String(contentsOfFile: source, encoding: .utf8), defines: defines, name: "hostile")
    }

    @Test func theUnbrokenFixtureLoadsAndRuns() throws {
        let h = try PluginHarness(plugin: try Self.plugin())
        h.write(port: 0x600, 0x5a)
        #expect(h.read(port: 0x600) == 0x5a)
        #expect(h.library.info.parameters.map(\.name) == ["port", "loud"])
    }

    @Test(arguments: [
        (define: "STRUCT_SIZE=0x7fffffff", field: "struct_size", problem: "is outside"),
        (define: "STRUCT_SIZE=8", field: "struct_size", problem: "is outside"),
        (define: "PARAM_COUNT=100000", field: "param_count", problem: "100000 exceeds 256"),
        // The table's memory goes on past its two entries: the first entry past them is refused.
        (define: "PARAM_COUNT=200", field: "params[2].struct_size", problem: "0 is outside 56...88"),
        (define: "PARAM_STRIDE=0x100000", field: "param_spec_size", problem: "1048576 is not a multiple of 8 in 56...88"),
        (define: "PARAM_STRIDE=12", field: "param_spec_size", problem: "12 is not a multiple of 8"),
        (define: "SPEC_STRUCT_SIZE=0xffffffff", field: "params[0].struct_size", problem: "4294967295 is outside 56...88"),
        (define: "PARAMS_NULL", field: "params", problem: "is NULL but param_count is 2"),
        (define: "PARAMS_DANGLING", field: "params", problem: "bytes at 0x10 are not all readable"),
        (define: "NAME_AT_GUARD", field: "name", problem: "runs into unreadable memory after 7 bytes, before its NUL"),
        (define: "SUMMARY_UNTERMINATED", field: "summary", problem: "is not NUL-terminated within 256 bytes"),
        (define: "DOC_AT_GUARD", field: "params[0].doc", problem: "runs into unreadable memory after 10 bytes"),
        (define: "SUMMARY_CONTROL", field: "summary", problem: "contains control character 0xa at byte 3"),
        (define: "NULL_CALLBACKS", field: "create", problem: "is NULL; create and destroy are required"),
        (define: "IO_NOT_CODE", field: "io", problem: "is not in the code of any loaded object"),
    ])
    func aBrokenDescriptorIsRefusedNamingTheField(define: String, field: String, problem: String) throws {
        let path = try Self.plugin(define)
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        guard case .invalidField(let p, let f, let text) = error else {
            Issue.record("expected a refused field, got \(String(describing: error))")
            return
        }
        #expect(p == path && f == field, "\(error.map { "\($0)" } ?? "")")
        #expect(text.contains(problem), "\(text)")
        let line = error?.description ?? ""
        #expect(line.hasPrefix("plugin \(path) has a malformed descriptor: \(field): ") && !line.contains("\n"), "\(line)")
    }

    @Test func anEntryReturningADanglingPointerIsRefused() throws {
        let path = try Self.plugin("ENTRY_DANGLING")
        let error = #expect(throws: PluginLoadError.self) { try PluginLibrary(path: path) }
        #expect(error == .malformed(path: path, reason: "the entry returned 0x10, which is not readable memory"))
    }

    // MARK: veneer plugins

    static var veneer: String { TestSupport.productsDirectory + "/veneer" }

    /// A directory of plugins: one good, the rest broken in different ways, one crashing as it loads.
    @Test func pluginsListsTheGoodAndReportsEachBadFileOnALine() throws {
        let directory = try TestSupport.temporaryDirectory("plugins")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broken = ["PARAM_STRIDE=0x100000", "PARAM_COUNT=100000", "STRUCT_SIZE=0x7fffffff", "NAME_AT_GUARD", "NULL_CALLBACKS",
                      "CRASH_IN_ENTRY"]
        try FileManager.default.copyItem(atPath: try Self.plugin(#"NAME="good""#), toPath: directory + "/libgood.so")
        for (i, define) in broken.enumerated() {
            try FileManager.default.copyItem(atPath: try Self.plugin(define, #"NAME="bad\#(i)""#), toPath: directory + "/libbad\(i).so")
        }
        let r = try TestSupport.run(Self.veneer, ["plugins", "--plugin-path", directory])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").contains { $0.hasPrefix("good ") && $0.hasSuffix("hostile plugin fixture") }, "\(r.stdout)")
        #expect(r.stdout.contains("serial16550"), "the rest of the search path is still listed")
        let lines = r.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == broken.count, "\(r.stderr)")
        for (i, field) in ["param_spec_size", "param_count", "struct_size", "name", "create"].enumerated() {
            #expect(lines.contains { $0.hasPrefix("veneer: plugin \(directory)/libbad\(i).so has a malformed descriptor: \(field): ") },
                    "\(field): \(r.stderr)")
        }
        // Each file is loaded in a child of its own: one crashing while loading ends only that.
        #expect(lines.contains("veneer: plugin \(directory)/libbad5.so crashed while loading (SIGSEGV)"), "\(r.stderr)")
    }

    @Test func describeRefusesABadFileWithOneLine() throws {
        let path = try Self.plugin("PARAM_STRIDE=0x100000")
        let r = try TestSupport.run(Self.veneer, ["plugins", "--describe", path])
        #expect(r.status == SetupExitStatus.plugin)
        #expect(r.stderr == "veneer: plugin \(path) has a malformed descriptor: param_spec_size: 1048576 is not a multiple of 8 in 56...88 (a veneer_param_spec with or without its reserved tail)\n")
    }

    /// Without a slash --describe takes a plugin name, checked before any file is looked for.
    @Test(arguments: ["Serial", "x..y", "9lead", "with space", String(repeating: "a", count: 65)])
    func describeRefusesANameTheRuleForbids(name: String) throws {
        let r = try TestSupport.run(Self.veneer, ["plugins", "--describe", name])
        #expect(r.status == SetupExitStatus.plugin)
        #expect(r.stderr.hasPrefix("veneer: '\(name)' is not a plugin name"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    // MARK: veneer-plugin-test

    static var tool: String { TestSupport.productsDirectory + "/veneer-plugin-test" }

    @Test func aPluginCrashingInIOFailsEachCheckThatReachesIONamingThePhase() throws {
        let path = try Self.plugin("CRASH_IN_IO=1")
        let r = try TestSupport.run(Self.tool, [path, "--accesses", "100"])
        #expect(r.status == 1)
        let crash = "device 'dut' (plugin hostile) crashed in io (SIGSEGV)"
        #expect(r.stdout == """
            PASS  load: hostile 0.1 (ABI 1.\(PluginLibrary.hostABI.minor))
            PASS  create: instance created with schema defaults; regions: PIO 0x600+0x8
            FAIL  reset idempotent: \(crash)
            PASS  save/load round trip: 1-byte state saves, loads and saves again identically
            PASS  load rejects bad state: rejects 1 truncations; 48 of 64 random blobs rejected, the rest round-trip
            FAIL  random accesses: \(crash)
            4 passed, 2 failed

            """, "\(r.stdout)")
        #expect(r.stderr == "veneer-plugin-test: \(crash)\nveneer-plugin-test: \(crash)\n")
    }

    @Test(arguments: [(kind: 1, signal: "SIGSEGV"), (kind: 2, signal: "SIGFPE"), (kind: 3, signal: "SIGABRT"), (kind: 4, signal: "SIGILL")])
    func oneCheckCrashingEndsItsProcessWithStatus71(kind: Int, signal: String) throws {
        let path = try Self.plugin("CRASH_IN_IO=\(kind)")
        let r = try TestSupport.run(Self.tool, [path, "--phase", "random-accesses"])
        #expect(r.status == PluginCrashGuard.exitStatus)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr == "veneer-plugin-test: device 'dut' (plugin hostile) crashed in io (\(signal))\n")
    }

    @Test func aPluginCrashingInCreateFailsCreateAndStops() throws {
        let path = try Self.plugin("CRASH_IN_CREATE")
        let r = try TestSupport.run(Self.tool, [path])
        #expect(r.status == 1)
        #expect(r.stdout.hasSuffix("FAIL  create: device 'dut' (plugin hostile) crashed in create (SIGSEGV)\n1 passed, 1 failed\n"), "\(r.stdout)")
        #expect(r.stderr == "veneer-plugin-test: device 'dut' (plugin hostile) crashed in create (SIGSEGV)\n")
    }

    @Test func aPluginCrashingWhileLoadingFailsLoadNamingTheFile() throws {
        let path = try Self.plugin("CRASH_IN_ENTRY")
        let r = try TestSupport.run(Self.tool, [path])
        #expect(r.status == 1)
        #expect(r.stdout == "FAIL  load: plugin \(path) crashed while loading (SIGSEGV)\n0 passed, 1 failed\n")
        #expect(r.stderr == "veneer-plugin-test: plugin \(path) crashed while loading (SIGSEGV)\n")
        let described = try TestSupport.run(Self.veneer, ["plugins", "--describe", path])
        #expect(described.status == PluginCrashGuard.exitStatus)
        #expect(described.stderr == "veneer: plugin \(path) crashed while loading (SIGSEGV)\n")
    }

    @Test func aCheckThatHangsIsKilledAfterTheTimeoutAndFails() throws {
        let path = try Self.plugin("HANG_IN_IO")
        let r = try TestSupport.run(Self.tool, [path, "--timeout", "1", "--accesses", "10"])
        #expect(r.status == 1)
        let failed = r.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL  ") }
        #expect(failed == ["FAIL  reset idempotent: did not finish within 1 s (killed)",
                           "FAIL  random accesses: did not finish within 1 s (killed)"], "\(r.stdout)")
        #expect(r.stdout.hasSuffix("4 passed, 2 failed\n"))
    }

    /// A plugin printing to stdout cannot garble (or forge) the check lines: those come over a
    /// descriptor of their own, and the plugin's output goes to stderr.
    @Test func whatThePluginPrintsGoesToStderr() throws {
        let path = try Self.plugin("PRINT_IN_IO")
        let r = try TestSupport.run(Self.tool, [path, "--accesses", "10"])
        #expect(r.status == 0, "\(r.stdout)")
        #expect(r.stdout.split(separator: "\n").allSatisfy { $0.hasPrefix("PASS  ") || $0 == "6 passed, 0 failed" }, "\(r.stdout)")
        #expect(r.stderr.contains("noisenoise"))
    }

    @Test func aBrokenDescriptorIsOneLineOnStderr() throws {
        let path = try Self.plugin("PARAM_STRIDE=0x100000")
        let r = try TestSupport.run(Self.tool, [path])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.hasPrefix("veneer-plugin-test: plugin \(path) has a malformed descriptor: param_spec_size: "))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test func aNameTheRuleForbidsIsRefusedWithoutLoading() throws {
        let r = try TestSupport.run(Self.tool, ["Not-A-Name"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("veneer-plugin-test: 'Not-A-Name' is not a plugin name"), "\(r.stderr)")
    }
}
