import Foundation
import Testing
import VeneerPluginKit
@testable import VeneerHost

/// Hostile config text and files: NUL, absurd nesting and size, files that are not regular, and
/// the exit statuses and path resolution a user sees.
@Suite struct ConfigTrustTests {
    let file = "/cfg/vm.toml"

    func error(_ text: String) -> ConfigError? {
        do { _ = try ConfigParser.parse(text, file: file); return nil } catch { return error }
    }

    static let nulReason = "contains a NUL character (U+0000); TOML text may not contain one and it would cut the value short"

    // MARK: NUL

    /// The TOML library would hand each of these values over cut at the NUL.
    @Test(arguments: [
        ("name = \"a\\u0000b\"\n[boot]\nimage = \"g\"", "/cfg/vm.toml:1", "name"),
        ("[boot]\nimage = \"g\\U00000000.bin\"", "/cfg/vm.toml:2", "boot.image"),
        ("[boot]\nimage = \"g\0.bin\"", "/cfg/vm.toml:2", "boot.image"),
        ("[boot]\nimage = 'g\0.bin'", "/cfg/vm.toml:2", "boot.image"),
        ("[boot]\nimage = \"g\"\ncmdline = \"\"\"\nconsole=ttyS0\n\\u0000 quiet\"\"\"", "/cfg/vm.toml:5", "boot.cmdline"),
        ("[boot]\nimage = \"g\"\n[[device]]\nplugin = \"serial16550\"\n[[device]]\nplugin = \"debug-exit\\u0000x\"",
         "/cfg/vm.toml:6", "device[1].plugin"),
        ("[boot]\nimage = \"g\"\n[[device]]\nplugin = \"i8042\"\ninput = 'k' # keys\0", "/cfg/vm.toml:5", "device[0].input"),
        ("x = { y = [1, \"\\u0000\"] }\n[boot]\nimage = \"g\"", "/cfg/vm.toml:1", "x.y"),
    ])
    func nulIsRefusedWithLineAndKey(text: String, location: String, key: String) {
        #expect(error(text) == ConfigError(file: location, key: key, reason: Self.nulReason))
    }

    /// Where no key is known yet (inside a key or a header) the column says where.
    @Test func nulInAKeyHasLineAndColumn() {
        #expect(error("[boot]\nima\0ge = \"g\"") == ConfigError(file: "/cfg/vm.toml:2:4", key: "", reason: Self.nulReason))
        #expect(error("[bo.\"\\u0000\"]") == ConfigError(file: "/cfg/vm.toml:1:6", key: "", reason: Self.nulReason))
    }

    /// Text that only looks like a NUL is data: a literal string, an escaped backslash, U+0001.
    @Test func lookalikesAreNotNUL() throws {
        #expect(try ConfigParser.parse("name = 'a\\u0000b'\n[boot]\nimage = \"g\"", file: file).name == "a\\u0000b")
        #expect(try ConfigParser.parse("name = \"a\\\\u0000b\"\n[boot]\nimage = \"g\"", file: file).name == "a\\u0000b")
        #expect(try ConfigParser.parse("name = \"a\\u0001\"\n[boot]\nimage = \"g\"", file: file).name == "a\u{1}")
        // The one-line error shows the control character escaped.
        #expect(error("on_reset = \"a\\nb\"\n[boot]\nimage = \"g\"")?.description
                == "/cfg/vm.toml: on_reset: 'a\\nb' is not one of stop, restart")
    }

    // MARK: nesting and size

    static let depth = 100_000

    static func deep(_ open: String, _ close: String = "", middle: String = "1") -> String {
        String(repeating: open, count: depth) + middle + String(repeating: close, count: depth)
    }

    static func dotted(_ part: String) -> String { Array(repeating: part, count: depth).joined(separator: ".") }

    /// Named, so the test log shows the name rather than 100,000 brackets.
    static let deepTexts: [String: String] = [
        "dotted key": dotted("a") + " = 1",
        "table header": "[" + dotted("t") + "]",
        "array of tables header": "[[" + dotted("t") + "]]",
        "inline arrays": "a = " + deep("[", "]", middle: ""),
        "inline tables": "a = " + deep("{b=", "}"),
        "dotted key in an inline table": "a = {" + dotted("b") + " = 1}",
        "unterminated mix in a device": "[boot]\nimage = \"g\"\n[[device]]\nplugin = \"x\"\nv = [" + deep("[{a=", middle: ""),
    ]

    /// Each of these overflows the TOML parser's stack (SIGSEGV) without the bound.
    @Test(arguments: deepTexts.keys.sorted())
    func deepNestingIsRefusedBeforeParsing(shape: String) {
        let text = Self.deepTexts[shape] ?? ""
        let e = error(text)
        #expect(e?.reason.hasPrefix("nested 33 levels deep") == true, "\(String(describing: e))")
        #expect(e?.reason.hasSuffix("at most \(ConfigParser.maxNestingDepth) are allowed") == true)
        #expect(e.map { $0.description.count < 300 } == true, "one short line")
    }

    @Test func nestingAtTheLimitReachesTheParser() {
        let key = Array(repeating: "k", count: ConfigParser.maxNestingDepth).joined(separator: ".")
        #expect(error("\(key) = 1\n[boot]\nimage = \"g\"") == ConfigError(file: file, key: "k", reason: "unknown key"))
        let array = String(repeating: "[", count: ConfigParser.maxNestingDepth - 1) + String(repeating: "]", count: ConfigParser.maxNestingDepth - 1)
        #expect(error("k = \(array)\n[boot]\nimage = \"g\"") == ConfigError(file: file, key: "k", reason: "unknown key"))
    }

    @Test func oversizedTextIsRefused() {
        let text = "name = \"" + String(repeating: "x", count: ConfigParser.maxConfigBytes) + "\""
        #expect(error(text)?.reason == "the config has \(ConfigParser.maxConfigBytes + 9) bytes, more than \(ConfigParser.maxConfigBytes)")
    }

    // MARK: files that are not regular

    static func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("veneer-trust-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A FIFO without a writer would block a plain open forever; these return at once.
    @Test func configThatIsNotARegularFileIsRefusedAtOnce() throws {
        let dir = try Self.directory()
        let fifo = dir + "/vm.toml"
        #expect(mkfifo(fifo, 0o600) == 0)
        for (path, what) in [(fifo, "a FIFO"), (dir, "a directory"), ("/dev/null", "a character device")] {
            let e = #expect(throws: ConfigError.self) { _ = try ConfigParser.load(path: path) }
            #expect(e == ConfigError(file: path, key: "", reason: "it is \(what), not a regular file", unreadable: true))
            #expect(e?.exitStatus == SetupExitStatus.noInput)
        }
        let missing = #expect(throws: ConfigError.self) { _ = try ConfigParser.load(path: dir + "/absent.toml") }
        #expect(missing?.reason == "cannot open: No such file or directory")
        #expect(missing?.exitStatus == SetupExitStatus.noInput)
    }

    @Test func bootFileThatIsNotARegularFileIsRefusedAtOnce() throws {
        let dir = try Self.directory()
        let fifo = dir + "/initrd"
        #expect(mkfifo(fifo, 0o600) == 0)
        let e = #expect(throws: BootError.self) { _ = try BootFile.read(fifo, role: "initrd", key: "boot.initrd", limit: 1 << 20) }
        #expect(e?.description == "boot.initrd: initrd \(fifo): it is a FIFO, not a regular file")
        #expect(e?.unreadable == true)
        #expect(MachineError.boot(try #require(e)).exitStatus == SetupExitStatus.noInput)
        let flat = FlatImage(path: dir, mode: .real)
        let memory = try GuestMemory(map: try MemoryMap.pc(ramBytes: 2 << 20))
        let d = #expect(throws: BootError.self) { _ = try flat.load(into: memory) }
        #expect(d?.description == "boot.image: boot image \(dir): it is a directory, not a regular file")
    }

    // MARK: exit statuses

    @Test func setupErrorsHaveTheirOwnStatuses() {
        let statuses = [SetupExitStatus.usage, SetupExitStatus.badConfig, SetupExitStatus.noInput,
                        SetupExitStatus.hostUnavailable, SetupExitStatus.plugin]
        #expect(statuses == [64, 65, 66, 69, 78])
        // Apart from each other, from a passing QEMU-encoded guest (1) and from the run-time ones.
        let runTime = [MachineExit.fault("").exitStatus, MachineExit.deviceError("").exitStatus, MachineExit.guestExit(1).exitStatus]
        #expect(Set(statuses + runTime).count == statuses.count + runTime.count)
        #expect(MachineError.config(ConfigError(file: "f", key: "k", reason: "r")).exitStatus == 65)
        #expect(MachineError.plugin(file: "f", device: "d", .notFound(name: "x", searched: [])).exitStatus == 78)
        #expect(MachineError.boot(BootError(image: "i", reason: "truncated")).exitStatus == 65)
        #expect(MachineError.memory("m").exitStatus == 69)
    }

    // MARK: plugin parameters

    @Test func pathParametersResolveAgainstTheConfigDirectory() throws {
        let config = try ConfigParser.parse("""
            [boot]
            image = "g"
            [[device]]
            plugin = "serial16550"
            output = "logs/com1.txt"
            input = "stdin"
            [[device]]
            plugin = "i8042"
            input = "/dev/abs"
            [[device]]
            plugin = "cmos-rtc"
            """, file: "/vms/a/vm.toml")
        let devices = try DeviceResolver.resolve(config, registry: .standard())
        func value(_ device: Int, _ name: String) -> ParameterValue.Value? {
            devices[device].parameters.first { $0.name == name }?.value
        }
        #expect(value(0, "output") == .string("/vms/a/logs/com1.txt"))
        #expect(value(0, "input") == .string("stdin"))
        #expect(value(1, "input") == .string("/dev/abs"))
        #expect(value(2, "nvram") == .string(""))
    }

    @Test func enumeratedIntegersRefuseOthers() throws {
        let config = try ConfigParser.parse("[boot]\nimage = \"g\"\n[[device]]\nplugin = \"debug-exit\"\nwidth = 3", file: file)
        let e = #expect(throws: MachineError.self) { _ = try DeviceResolver.resolve(config, registry: .standard()) }
        #expect(e?.description == "/cfg/vm.toml: device[0].width: 3 is not one of 1, 2, 4 [plugin debug-exit]")
        #expect(e?.exitStatus == SetupExitStatus.badConfig)
    }
}

/// Text the TOML library would assert on (debug) or misparse (release) instead of reporting.
@Suite struct ConfigParserAssumptionTests {
    @Test(arguments: [
        ("[,device]", "/cfg/vm.toml:1:2", "a table header must start with a key (a bare key or a quoted one)"),
        ("[[ ,device]]", "/cfg/vm.toml:1:4", "a table header must start with a key (a bare key or a quoted one)"),
        ("[[[boot]", "/cfg/vm.toml:1:3", "a table header must start with a key (a bare key or a quoted one)"),
        ("a = [ }", "/cfg/vm.toml:1:7", "expected a value or ']' in the array"),
        ("a = [1, }]", "/cfg/vm.toml:1:9", "expected a value or ']' in the array"),
        ("a = [\u{2028}1]", "/cfg/vm.toml:1:6", "expected a value or ']' in the array"),
    ])
    func refusedWithLineAndColumn(text: String, location: String, reason: String) {
        let key = text.hasPrefix("a") ? "a" : ""
        let e = #expect(throws: ConfigError.self) { _ = try ConfigParser.parse(text, file: "/cfg/vm.toml") }
        #expect(e == ConfigError(file: key.isEmpty ? location : String(location.dropLast(2)), key: key, reason: reason))
    }
}

/// The SDK's opener for files a plugin keeps state in: regular files only, and never a wait.
@Suite struct HostFileTests {
    @Test func refusesWhatIsNotARegularFileAtOnce() throws {
        let dir = try ConfigTrustTests.directory()
        let fifo = dir + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        // Without O_NONBLOCK each of these opens would wait for the other end forever.
        #expect(throws: HostFile.OpenError.notRegular(type: "a FIFO")) { _ = try HostFile.openRegular(fifo, flags: O_RDONLY) }
        #expect(throws: HostFile.OpenError.failed(errno: ENXIO)) { _ = try HostFile.openRegular(fifo, flags: O_WRONLY) }
        #expect(throws: HostFile.OpenError.notRegular(type: "a directory")) { _ = try HostFile.openRegular(dir, flags: O_RDONLY) }
        #expect(throws: HostFile.OpenError.notRegular(type: "a character device")) {
            _ = try HostFile.openRegular("/dev/null", flags: O_RDONLY)
        }
        // A planted link is not followed where the caller says so.
        #expect(symlink(dir + "/target", dir + "/link") == 0)
        #expect(throws: HostFile.OpenError.failed(errno: ELOOP)) {
            _ = try HostFile.openRegular(dir + "/link", flags: O_WRONLY | O_CREAT | O_NOFOLLOW)
        }
        let fd = try HostFile.openRegular(dir + "/file", flags: O_WRONLY | O_CREAT)
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK == 0)
        close(fd)
    }
}
