import Testing
import VeneerHost

/// Bad input of every kind gets one clear line naming what and where, and a non-zero status.
/// These never start a VM, so they run with or without /dev/kvm.
struct CLIErrorTests {
    func firstErrorLine(_ r: VeneerProcess.Result) -> String {
        String(r.stderr.split(separator: "\n").first ?? "")
    }

    @Test func missingPluginNamesTheDeviceAndTheSearchPath() throws {
        let config = try VeneerProcess.config("""
            [boot]
            image = "{root}/examples/guests/build/hello.bin"
            mode = "real"
            [[device]]
            id = "nic"
            plugin = "no-such-plugin"
            """)
        let r = try VeneerProcess.veneer(["run", config])
        #expect(r.status == SetupExitStatus.plugin)
        #expect(firstErrorLine(r).contains("device[0] 'nic': plugin 'no-such-plugin' not found"))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test func unknownTopLevelKey() throws {
        let config = try VeneerProcess.config("""
            memroy = "1G"
            [boot]
            image = "x.bin"
            """)
        let r = try VeneerProcess.veneer(["check", config])
        #expect(r.status == SetupExitStatus.badConfig)
        #expect(firstErrorLine(r) == "veneer: \(config): memroy: unknown key")
    }

    @Test func unknownPluginParameterNamesTheKeyAndTheChoices() throws {
        let config = try VeneerProcess.config("""
            [boot]
            image = "x.bin"
            [[device]]
            plugin = "serial16550"
            prot = 0x3f8
            """)
        let r = try VeneerProcess.veneer(["check", config])
        #expect(r.status == SetupExitStatus.badConfig)
        #expect(firstErrorLine(r).contains("device[0].prot: unknown parameter (this plugin takes: port, irq, output, input)"))
    }

    @Test func outOfRangeParameter() throws {
        let config = try VeneerProcess.config("""
            [boot]
            image = "x.bin"
            [[device]]
            plugin = "serial16550"
            irq = 99
            """)
        let r = try VeneerProcess.veneer(["check", config])
        #expect(r.status == SetupExitStatus.badConfig)
        #expect(firstErrorLine(r).contains("device[0].irq: 99"))
    }

    /// A parameter group's table is checked like device keys; the error names the device by id,
    /// the group, the table and the key, and a good config's groups are listed by `check`.
    @Test func aBadGroupTableNamesDeviceGroupTableAndKey() throws {
        let text = """
            [boot]
            image = "x.bin"
            [[device]]
            id = "scsi0"
            plugin = "param-testdev"
            [[device.disk]]
            lun = 0
            path = "a.img"
            [[device.disk]]
            lun = 1
            path = "b.img"
            cache = "fast"
            """
        let bad = try VeneerProcess.config(text)
        let r = try VeneerProcess.veneer(["check", bad])
        #expect(r.status == SetupExitStatus.badConfig)
        #expect(r.stderr == "veneer: \(bad): device \"scsi0\": disk[1].cache: 'fast' is not one of none, writeback, unsafe [plugin param-testdev]\n")
        let good = try VeneerProcess.config(text.replacingOccurrences(of: "\"fast\"", with: "\"unsafe\""))
        let ok = try VeneerProcess.veneer(["check", good])
        #expect(ok.status == 0, "\(ok.stderr)")
        let directory = String(good.dropLast("/vm.toml".count))
        #expect(ok.stdout.contains("scsi0: param-testdev 1.0.0  port=0x6f0 disk=[{lun=0 path=\"\(directory)/a.img\" cache=\"none\" read_only=false}, "
                                   + "{lun=1 path=\"\(directory)/b.img\" cache=\"unsafe\" read_only=false}]"), "\(ok.stdout)")
    }

    @Test func syntaxErrorHasLineAndColumn() throws {
        let config = try VeneerProcess.config("name = \"x\"\n[boot\n")
        let r = try VeneerProcess.veneer(["check", config])
        #expect(r.status == SetupExitStatus.badConfig)
        #expect(firstErrorLine(r).hasPrefix("veneer: \(config):2:"))
    }

    @Test func pluginBuiltForAnotherABIMajor() throws {
        let dir = try VeneerProcess.config("", name: "unused").replacingOccurrences(of: "/unused", with: "")
        let source = "\(dir)/future.c"
        try """
            #include "veneer_plugin.h"
            static const veneer_plugin_descriptor d = { sizeof d, 2, 0, "future", "9.0", "from the future", VENEER_KIND_EMULATED };
            const veneer_plugin_descriptor *veneer_plugin_entry(void) { return &d; }
            """.write(toFile: source, atomically: true, encoding: .utf8)
        let cc = try VeneerProcess.run("/usr/bin/cc", ["-shared", "-fPIC", "-I\(VeneerProcess.repoRoot)/PluginSDK/include",
                                                       source, "-o", "\(dir)/libfuture.so"])
        #expect(cc.status == 0, "\(cc.stderr)")
        let config = try VeneerProcess.config("""
            [boot]
            image = "x.bin"
            [[device]]
            plugin = "future"
            path = "\(dir)/libfuture.so"
            """)
        let r = try VeneerProcess.veneer(["check", config])
        #expect(r.status == SetupExitStatus.plugin)
        #expect(firstErrorLine(r).contains("was built for Veneer plugin ABI 2.0; this host speaks ABI 1.\(PluginLibrary.hostABI.minor)"))
    }

    @Test func bootImageTooLargeForRAM() throws {
        let config = try VeneerProcess.config("""
            memory = "2M"
            [boot]
            image = "{root}/examples/guests/build/smp64.bin"
            mode = "long"
            load_address = 0x1ffff0
            """)
        let r = try VeneerProcess.veneer(["run", config])
        #expect(r.status == SetupExitStatus.badConfig)
        #expect(firstErrorLine(r).contains("do not fit in guest RAM"), "\(r.stderr)")
    }

    @Test func checkPrintsTheResolvedDevices() throws {
        let r = try VeneerProcess.veneer(["check", "examples/hello.toml"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("com1: serial16550"))
        #expect(r.stdout.contains("exit: debug-exit"))
    }

    @Test func pluginsListsAndDescribes() throws {
        let list = try VeneerProcess.veneer(["plugins"])
        #expect(list.stdout.contains("serial16550"))
        #expect(list.stdout.contains("debug-exit"))
        let d = try VeneerProcess.veneer(["plugins", "--describe", "serial16550"])
        #expect(d.status == 0)
        #expect(d.stdout.contains("port (integer 0...65535, default 0x3f8)") || d.stdout.contains("port ("))
    }
}
