import Testing
@testable import VeneerHost

struct ConfigParserTests {
    func parse(_ text: String) throws(ConfigError) -> VMConfig { try ConfigParser.parse(text, file: "/cfg/vm.toml") }

    func error(_ text: String) -> ConfigError? {
        do { _ = try parse(text); return nil } catch { return error }
    }

    @Test func fullConfig() throws {
        let c = try parse("""
            name = "web"
            memory = "2G"
            vcpus = 2
            [boot]
            format = "flat"
            image = "guest.bin"
            mode = "protected"
            load_address = 0x200000
            entry = 0x200010
            [[device]]
            id = "com1"
            plugin = "serial16550"
            port = 0x2f8
            output = "none"
            [[device]]
            plugin = "debug-exit"
            path = "/opt/p/libdebug-exit.so"
            """)
        #expect(c.name == "web")
        #expect(c.memoryBytes == 2 << 30)
        #expect(c.vcpus == 2)
        #expect(c.boot == .flat(FlatImage(path: "/cfg/guest.bin", mode: .protected, loadAddress: 0x200000, entry: 0x200010)))
        #expect(c.devices.count == 2)
        #expect(c.devices[0].parameters == ["port": .int(0x2f8), "output": .string("none")])
        #expect(c.devices[1].id == "debug-exit-1")
        #expect(c.devices[1].path == "/opt/p/libdebug-exit.so")
    }

    @Test func defaults() throws {
        let c = try parse("[boot]\nimage = \"/g.bin\"\n")
        #expect(c.memoryBytes == 128 << 20 && c.vcpus == 1 && c.boot == .flat(FlatImage(path: "/g.bin", mode: .long, loadAddress: 0x100000)))
        #expect(try parse("memory = 256\n[boot]\nimage = \"/g\"\n").memoryBytes == 256 << 20)
    }

    @Test(arguments: [
        ("memroy = 1\n[boot]\nimage=\"g\"", "memroy", "unknown key"),
        ("[boot]\nimage=\"g\"\nmod = \"real\"", "boot.mod", "unknown key"),
        ("[boot]\nimage=\"g\"\nmode = \"virtual\"", "boot.mode", "'virtual' is not one of real, protected, long"),
        ("[boot]\nformat=\"elf\"\nimage=\"g\"", "boot.format", "'elf' is not a supported format (supported: flat, bzimage, pvh, multiboot)"),
        ("vcpus = 0\n[boot]\nimage=\"g\"", "vcpus", "0 is outside 1...64"),
        ("vcpus = \"2\"\n[boot]\nimage=\"g\"", "vcpus", "expected an integer, got string"),
        ("memory = \"64X\"\n[boot]\nimage=\"g\"", "memory", "'64X' is not a size such as \"64M\" or \"2G\" (at most 1T)"),
        ("memory = \"2T\"\n[boot]\nimage=\"g\"", "memory", "'2T' is not a size such as \"64M\" or \"2G\" (at most 1T)"),
        ("name = \"x\"", "boot", "missing: a [boot] table naming the image is required"),
        ("on_reset = \"reboot\"\n[boot]\nimage=\"g\"", "on_reset", "'reboot' is not one of stop, restart"),
        ("[boot]\nmode=\"real\"", "boot.image", "missing: the path of the image to boot"),
        ("[boot]\nimage=\"g\"\n[[device]]\nid = \"x\"", "device[0].plugin", "missing: which plugin implements this device"),
        ("[boot]\nimage=\"g\"\n[[device]]\nplugin=\"a\"\nid=\"Bad Id\"", "device[0].id", "'Bad Id' must match [a-z][a-z0-9_-]*"),
        ("[boot]\nimage=\"g\"\n[[device]]\nplugin=\"a\"\nid=\"x\"\n[[device]]\nplugin=\"b\"\nid=\"x\"", "device[1].id", "'x' is already used by another device"),
        ("[boot]\nimage=\"g\"\n[[device]]\nplugin=\"a\"\nspeed=1.5", "device[0].speed", "plugin parameters are booleans, integers, strings or arrays of tables, not floating-point number"),
    ])
    func errorsNameFileKeyAndReason(text: String, key: String, reason: String) {
        let e = error(text)
        #expect(e == ConfigError(file: "/cfg/vm.toml", key: key, reason: reason))
    }

    /// The name becomes a file name in the search path: one the descriptor's rule forbids is
    /// refused at parse time, naming the key written, even where the device has an id of its own
    /// (before, a bad name reached the default id's check and the error named `id`).
    @Test(arguments: ["../evil", "/abs/evil", "a/b", "..", "Serial16550", "lib.so", "-x", "", String(repeating: "p", count: 65)])
    func aPluginNameTheRuleForbidsNamesThePluginKey(name: String) {
        for idLine in ["", "id = \"dev\"\n"] {
            let e = error("[boot]\nimage=\"g\"\n[[device]]\n\(idLine)plugin = \"\(name)\"\n")
            #expect(e?.key == "device[0].plugin", "\(String(describing: e))")
            #expect(e?.reason.hasPrefix("'\(name)' is not a plugin name ([a-z][a-z0-9_-]*, at most 64 bytes)") == true)
        }
        let second = error("[boot]\nimage=\"g\"\n[[device]]\nplugin = \"debug-exit\"\n[[device]]\nplugin = \"\(name)\"\npath = \"/p/x.so\"\n")
        #expect(second?.key == "device[1].plugin", "a path does not excuse the name: it is what the descriptor must say")
    }

    @Test func syntaxErrorsCarryLineAndColumn() {
        let e = error("name = \"x\"\n[boot\n")
        #expect(e?.file.hasPrefix("/cfg/vm.toml:2:") == true)
    }
}

struct ParameterValidationTests {
    let schema = [
        ParameterSchema(name: "port", doc: "base port", kind: .int(min: 0, max: 0xffff), defaultText: "0x3f8"),
        ParameterSchema(name: "mode", doc: "how", kind: .choice(["plain", "qemu"]), defaultText: "plain"),
        ParameterSchema(name: "on", doc: "switch", kind: .bool, defaultText: "false"),
        ParameterSchema(name: "file", doc: "where", kind: .string, defaultText: nil),
    ]

    @Test func fillsDefaultsInSchemaOrder() throws {
        let v = try ParameterValidation.resolve(["file": .string("/x")], schema: schema)
        #expect(v.map(\.name) == ["port", "mode", "on", "file"])
        #expect(v.map(\.value) == [.int(0x3f8), .string("plain"), .bool(false), .string("/x")])
    }

    @Test func reportsTheOffendingKey() {
        func problem(_ inputs: [String: ParameterValidation.Input]) -> ParameterValidation.Problem? {
            do { _ = try ParameterValidation.resolve(inputs, schema: schema); return nil } catch { return error }
        }
        #expect(problem(["file": .string("x"), "prot": .int(1)])?.key == "prot")
        #expect(problem([:])?.reason.hasPrefix("required parameter missing") == true)
        #expect(problem(["file": .string("x"), "port": .int(0x10000)])?.key == "port")
        #expect(problem(["file": .string("x"), "port": .string("0x3f8")])?.reason == "expected integer 0...65535, got a string")
        #expect(problem(["file": .string("x"), "mode": .string("fast")])?.reason == "'fast' is not one of plain, qemu")
        #expect(problem(["file": .string("x"), "on": .int(1)])?.key == "on")
    }

    @Test(arguments: [("0x3f8", Int64(0x3f8)), ("1_000", 1000), ("-5", -5), ("0b101", 5), ("0o17", 15),
                      ("9223372036854775807", Int64.max), ("-9223372036854775808", Int64.min)])
    func integers(text: String, value: Int64) { #expect(ParameterValidation.parseInteger(text) == value) }

    @Test(arguments: ["", "0x", "12a", "9223372036854775808", "--1", "0x-1"])
    func notIntegers(text: String) { #expect(ParameterValidation.parseInteger(text) == nil) }
}

struct GenerationTests {
    @Test func generationOneAddsThePCDevices() throws {
        let c = try ConfigParser.parse("generation = 1\n[boot]\nimage = \"/g\"\n", file: "/vm.toml")
        #expect(c.generation == .one)
        #expect(c.devices.map(\.plugin) == ["serial16550", "pit8254", "cmos-rtc", "i8042", "acpi-pm", "pci-host"])
    }

    @Test func aConfiguredDeviceReplacesTheDefaultOfItsPlugin() throws {
        let c = try ConfigParser.parse("""
            generation = 1
            [boot]
            image = "/g"
            [[device]]
            id = "com2"
            plugin = "serial16550"
            port = 0x2f8
            [[device]]
            id = "rtc"
            plugin = "debug-exit"
            """, file: "/vm.toml")
        #expect(c.devices.map(\.id) == ["pit", "kbd", "pm", "pci", "com2", "rtc"])
    }

    @Test func generationTwoAddsNothingAndIsTheDefault() throws {
        let c = try ConfigParser.parse("[boot]\nimage = \"/g\"\n", file: "/vm.toml")
        #expect(c.generation == .two && c.devices.isEmpty)
        let e = #expect(throws: ConfigError.self) { try ConfigParser.parse("generation = 3\n[boot]\nimage = \"/g\"\n", file: "/vm.toml") }
        #expect(e?.key == "generation")
    }
}
