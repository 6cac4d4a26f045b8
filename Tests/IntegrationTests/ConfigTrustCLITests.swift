import Foundation
import Testing
import VeneerHost

/// The real `veneer` binary on hostile config and image files and command lines: one line on
/// stderr naming what and where, and the documented exit status (README "Exit status"). Only the
/// boot-image test needs /dev/kvm (the image is read after the VM is created).
struct ConfigTrustCLITests {
    func expectOneLine(_ r: VeneerProcess.Result, status: Int32, _ fragments: [String],
                       sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "\(r.stderr)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 1, "one line: \(r.stderr)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(r.stderr.contains(fragment), "'\(fragment)' in \(r.stderr)", sourceLocation: sourceLocation)
        }
    }

    static func directory() throws -> String {
        try VeneerProcess.config("", name: "unused").replacingOccurrences(of: "/unused", with: "")
    }

    /// A FIFO with no writer would block a plain open forever: refused at once instead.
    @Test func configThatIsAFIFOOrADirectory() throws {
        let dir = try Self.directory()
        #expect(mkfifo(dir + "/vm.toml", 0o600) == 0)
        for command in ["run", "check"] {
            expectOneLine(try VeneerProcess.veneer([command, dir + "/vm.toml"]), status: SetupExitStatus.noInput,
                          ["veneer: \(dir)/vm.toml: it is a FIFO, not a regular file"])
        }
        expectOneLine(try VeneerProcess.veneer(["check", dir]), status: SetupExitStatus.noInput, ["it is a directory"])
        expectOneLine(try VeneerProcess.veneer(["check", dir + "/missing.toml"]), status: SetupExitStatus.noInput,
                      ["missing.toml: cannot open: No such file or directory"])
    }

    @Test func bootImageThatIsAFIFO() throws {
        guard VeneerProcess.kvmAvailable else {
            print("SKIPPED: /dev/kvm is not available on this machine")
            return
        }
        let dir = try Self.directory()
        #expect(mkfifo(dir + "/kernel", 0o600) == 0)
        try "[boot]\nformat = \"multiboot\"\nkernel = \"kernel\"\n".write(toFile: dir + "/vm.toml", atomically: true, encoding: .utf8)
        expectOneLine(try VeneerProcess.veneer(["run", dir + "/vm.toml"]), status: SetupExitStatus.noInput,
                      ["veneer: boot.kernel: boot image \(dir)/kernel: it is a FIFO, not a regular file"])
    }

    @Test func nulInAConfigNamesTheLineAndKey() throws {
        let config = try VeneerProcess.config("[boot]\nimage = \"{root}/examples/guests/build/hello.bin\"\n[[device]]\nplugin = \"debug-exit\\u0000\"\n")
        expectOneLine(try VeneerProcess.veneer(["check", config]), status: SetupExitStatus.badConfig,
                      ["veneer: \(config):4: device[0].plugin: contains a NUL character"])
    }

    @Test func deepNestingIsRefused() throws {
        let config = try VeneerProcess.config("a = " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000))
        expectOneLine(try VeneerProcess.veneer(["check", config]), status: SetupExitStatus.badConfig,
                      ["veneer: \(config):1: a: nested 33 levels deep", "at most 32 are allowed"])
    }

    @Test(arguments: [["run", "examples/hello.toml", "--log-level", "verbose"], ["run", "examples/hello.toml", "--bogus"],
                      ["run"], ["frobnicate"]])
    func commandLineMistakesAreUsageErrors(arguments: [String]) throws {
        expectOneLine(try VeneerProcess.veneer(arguments), status: SetupExitStatus.usage, ["veneer: ", "(see veneer --help)"])
    }

    @Test func logLevelNamesTheAcceptedWords() throws {
        let r = try VeneerProcess.veneer(["run", "examples/hello.toml", "--log-level", "loud"])
        expectOneLine(r, status: SetupExitStatus.usage, ["'loud'", "'error', 'warning', 'info' or 'debug'"])
    }

    @Test func enumeratedParameterRefusesUndocumentedValues() throws {
        let config = try VeneerProcess.config("[boot]\nimage = \"x.bin\"\n[[device]]\nplugin = \"debug-exit\"\nwidth = 3\n")
        expectOneLine(try VeneerProcess.veneer(["check", config]), status: SetupExitStatus.badConfig,
                      ["device[0].width: 3 is not one of 1, 2, 4 [plugin debug-exit]"])
        let d = try VeneerProcess.veneer(["plugins", "--describe", "debug-exit"])
        #expect(d.stdout.contains("width (integer, one of 1, 2, 4, default 1)"), "\(d.stdout)")
    }

    @Test func pathParametersAreRelativeToTheConfigFile() throws {
        let config = try VeneerProcess.config("[boot]\nimage = \"x.bin\"\n[[device]]\nplugin = \"serial16550\"\noutput = \"com1.log\"\n")
        let r = try VeneerProcess.veneer(["check", config])
        #expect(r.status == 0, "\(r.stderr)")
        let dir = (config as NSString).deletingLastPathComponent
        #expect(r.stdout.contains("output=\"\(dir)/com1.log\""), "\(r.stdout)")
        let d = try VeneerProcess.veneer(["plugins", "--describe", "serial16550"])
        #expect(d.stdout.contains("output (path or stdout, stderr, none, default stdout)"), "\(d.stdout)")
    }

    @Test func pluginProblemsAndConfigProblemsDiffer() throws {
        let missing = try VeneerProcess.config("[boot]\nimage = \"x.bin\"\n[[device]]\nplugin = \"no-such-plugin\"\n")
        expectOneLine(try VeneerProcess.veneer(["check", missing]), status: SetupExitStatus.plugin, ["plugin 'no-such-plugin' not found"])
        let typo = try VeneerProcess.config("[boot]\nimage = \"x.bin\"\nmdoe = \"real\"\n")
        expectOneLine(try VeneerProcess.veneer(["check", typo]), status: SetupExitStatus.badConfig, ["boot.mdoe: unknown key"])
    }
}
