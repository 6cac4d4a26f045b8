import Foundation
import Testing
@testable import VeneerHost

// Seeded random configs through the whole load path (`ConfigParser.load(bytes:)`: UTF-8 check,
// size, NUL and nesting scan, TOML parse, typed keys; then `DeviceResolver` against the real
// plugins for those that parse). Generated configs look like real ones (known keys, boot formats,
// devices with their parameters) with random values, escapes, NULs and deep nesting mixed in,
// and a share of them is then mutated byte-wise. Checked for every input: no crash, and
//   - a raw NUL byte anywhere is refused; so is an escaped one in an unmutated config,
//   - every error is one line,
//   - nothing accepted carries a NUL.
//
// The default run is short. VENEER_CONFIG_FUZZ_INPUTS=1000000 (and optionally
// VENEER_CONFIG_FUZZ_SEED=n) makes the long run; it prints the count, seed and time.
// VENEER_CONFIG_FUZZ_DUMP=FILE writes each input to FILE before loading it, so after a crash
// inside the TOML library FILE holds the input that caused it.

private struct ConfigFuzzer {
    var random: SeededGenerator

    mutating func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0..<values.count, using: &random)] }
    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }
    mutating func count(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }

    static let keys = ["name", "memory", "vcpus", "hyperv", "generation", "on_reset", "format", "image", "kernel",
                       "cmdline", "initrd", "mode", "load_address", "entry", "path", "id", "plugin", "port", "irq",
                       "output", "input", "width", "encoding", "nvram", "start", "power_button", "slot", "instance"]
    static let plugins = ["serial16550", "debug-exit", "pit8254", "cmos-rtc", "i8042", "acpi-pm", "pci-host",
                          "pci-testdev", "vmbus-echo", "param-testdev", "no-such", "../x", "Bad Name"]
    static let escapes = ["\\n", "\\t", "\\\"", "\\\\", "\\u00e9", "\\U0001F600", "\\b", "\\f", "\\r", "\\u0041"]
    static let tokens = ["[", "]", "[[", "]]", "{", "}", "\"", "'", "=", ".", ",", "\n", "#", "\\", "\"\"\"", "'''",
                         "\\u0000", "\r\n", " = ", "0x", "\u{FEFF}", "é", "\t", "\u{2028}", "\u{85}", "\u{3000}", "\u{B}", "[ ", "= ["]

    /// Whether an escaped NUL went into a basic string of the current config.
    var escapedNUL = false

    mutating func key() -> String {
        var parts: [String] = []
        let depth = chance(3) ? count(25...40) : chance(1) ? 0 : count(1...2)
        for _ in 0..<max(depth, 1) {
            parts.append(chance(85) ? pick(Self.keys) : chance(50) ? "\"\(stringBody())\"" : "'k\(count(0...99))'")
        }
        return parts.joined(separator: chance(10) ? " . " : ".")
    }

    mutating func stringBody() -> String {
        var s = ""
        for _ in 0..<count(0...6) {
            if chance(30) {
                s += pick(Self.escapes)
            } else if chance(1) {
                s += pick(["\\u0000", "\\U00000000"])
                escapedNUL = true
            } else {
                s += pick(["a", "b", "x.bin", "/tmp/f", " ", "none", "stdout", "é", "0x3f8", "-", "host"])
            }
        }
        return s
    }

    mutating func value(depth: Int) -> String {
        switch count(0...11) {
        case 0: return "\"\(stringBody())\""
        case 1: return "'\(pick(["a", "b\\u0000", "x.bin", ""]))'"
        case 2: return "\"\"\"\n\(stringBody())\n\(stringBody())\"\"\""
        case 3: return "'''\nline\n'''"
        case 4: return pick(["0", "1", "-1", "4", "64", "0x3f8", "0xf4", "0x7c00", "1_000", "9223372036854775807",
                             "-9223372036854775808", "0b101", "0o17", "+3", "99999999999999999999"])
        case 5: return pick(["true", "false"])
        case 6: return pick(["1.5", "inf", "nan", "1e3", "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27"])
        case 7: return pick(["\"16M\"", "\"2G\"", "\"0K\"", "\"1T\"", "\"x\"", "\"real\"", "\"long\"", "\"flat\"",
                             "\"multiboot\"", "\"pvh\"", "\"bzimage\"", "\"restart\"", "\"qemu\""])
        case 8 where depth < 45:
            let deep = chance(5)
            let n = deep ? count(28...40) : 1
            let inner = (0..<count(0...3)).map { _ in value(depth: depth + n) }.joined(separator: ", ")
            return String(repeating: "[", count: n) + inner + String(repeating: "]", count: n)
        case 9 where depth < 45:
            let fields = (0..<count(0...3)).map { _ in "\(key()) = \(value(depth: depth + 1))" }.joined(separator: ", ")
            return "{ \(fields) }"
        case 10: return "\"\(pick(Self.plugins))\""
        default: return "\"\(stringBody())\""
        }
    }

    /// A parameter of a real plugin with a plausible value.
    mutating func parameter() -> String {
        pick(["port = \(pick(["0x3f8", "0xfff8", "0xfff9", "0", "-1", "0x10000"]))", "irq = \(count(-1...24))",
              "output = \"\(pick(["none", "stdout", "log.txt", ""]))\"", "input = \"\(pick(["none", "stdin", "/dev/null"]))\"",
              "width = \(count(0...5))", "encoding = \"\(pick(["plain", "qemu", "x"]))\"", "slot = \(count(0...33))",
              "nvram = \"\(pick(["", "n.bin"]))\"", "start = \"\(pick(["host", "2020-02-29T23:59:58", "x"]))\"",
              "doorbell_port = \(pick(["0", "0xfffc", "0xfffd"]))", "id = \"\(pick(["a", "b", "com1", "Bad"]))\""])
    }

    mutating func line() -> String { "\(key()) = \(value(depth: 0))" + (chance(10) ? " # c" : "") }

    mutating func config() -> [UInt8] {
        escapedNUL = false
        var lines: [String] = []
        if chance(70) { lines.append("name = \"\(stringBody())\"") }
        if chance(50) { lines.append("memory = \(pick(["\"16M\"", "16", "0", "\"3G\"", "true"]))") }
        if chance(20) { lines.append("vcpus = \(count(0...65))") }
        if chance(20) { lines.append("generation = \(count(0...3))") }
        if chance(10) { lines.append(line()) }
        if chance(90) {
            lines.append(chance(90) ? "[boot]" : pick(["[ boot ]", "[\"boot\"]", "[boot.x]", "[[boot]]"]))
            let format = pick(["flat", "flat", "multiboot", "pvh", "bzimage", "elf"])
            if chance(90) { lines.append("format = \"\(format)\"") }
            let fileKey = chance(90) ? (format == "flat" ? "image" : "kernel") : pick(["image", "kernel"])
            lines.append("\(fileKey) = \"\(stringBody())\"")
            if chance(10) { lines.append(line()) }
            for _ in 0..<(chance(20) ? count(1...3) : 0) {
                lines.append("[[boot.module]]")
                lines.append("path = \"\(stringBody())\"")
            }
        }
        for _ in 0..<count(0...3) {
            lines.append(pick(["[[device]]", "[[device]]", "[device]", "[[ device ]]"]))
            lines.append("plugin = \"\(pick(Self.plugins))\"")
            for _ in 0..<count(0...2) { lines.append(chance(85) ? parameter() : line()) }
            // Parameter groups: [[device.disk]] tables (param-testdev's), and shapes that are not.
            for _ in 0..<(chance(30) ? count(1...3) : 0) {
                lines.append(chance(90) ? "[[device.disk]]" : pick(["[device.disk]", "[[device.disk.part]]", "disk = [1]", "disk = []"]))
                if chance(90) { lines.append("lun = \(pick(["0", "1", "63", "64", "-1", "\"0\""]))") }
                if chance(90) { lines.append("path = \(chance(80) ? "\"\(stringBody())\"" : value(depth: 1))") }
                if chance(30) { lines.append("cache = \"\(pick(["none", "writeback", "unsafe", "fast"]))\"") }
                if chance(20) { lines.append(chance(50) ? "read_only = \(pick(["true", "false", "1"]))" : line()) }
            }
        }
        if count(0...999) == 0 {
            // Far past any limit, once in a while.
            let n = 100_000
            lines.append(pick([
                Array(repeating: "a", count: n).joined(separator: ".") + " = 1",
                "[" + Array(repeating: "t", count: n).joined(separator: ".") + "]",
                "x = " + String(repeating: "[", count: n) + String(repeating: "]", count: n),
                "x = " + String(repeating: "{a=", count: n) + "1" + String(repeating: "}", count: n),
            ]))
        }
        return Array(lines.joined(separator: chance(5) ? "\r\n" : "\n").utf8)
    }

    /// Byte-level damage: flips, inserted tokens, deleted and duplicated spans, truncation.
    mutating func mutate(_ bytes: inout [UInt8]) {
        for _ in 0..<count(1...4) {
            guard !bytes.isEmpty else {
                bytes = Array(pick(Self.tokens).utf8)
                continue
            }
            let at = count(0...bytes.count - 1)
            switch count(0...5) {
            case 0: bytes[at] ^= UInt8(1 << count(0...7))
            case 1: bytes.insert(contentsOf: Array(pick(Self.tokens).utf8), at: at)
            case 2: bytes.removeSubrange(at..<min(bytes.count, at + count(1...16)))
            case 3:
                let span = Array(bytes[at..<min(bytes.count, at + count(1...32))])
                bytes.insert(contentsOf: span, at: count(0...bytes.count))
            case 4: bytes.removeSubrange(at...)
            default: bytes.insert(0, at: at)
            }
        }
    }
}

@Suite struct ConfigFuzzTests {
    static var inputs: Int { ProcessInfo.processInfo.environment["VENEER_CONFIG_FUZZ_INPUTS"].flatMap { Int($0) } ?? 4_000 }
    static var dumpPath: String? { ProcessInfo.processInfo.environment["VENEER_CONFIG_FUZZ_DUMP"] }
    static var seed: UInt64 { ProcessInfo.processInfo.environment["VENEER_CONFIG_FUZZ_SEED"].flatMap { UInt64($0) } ?? 20_261_207 }

    @Test func randomConfigsNeverBreakTheLoader() {
        let registry = PluginRegistry.standard()
        var fuzzer = ConfigFuzzer(random: SeededGenerator(seed: Self.seed))
        var accepted = 0, resolved = 0, refused = 0
        let started = ContinuousClock.now
        for i in 0..<Self.inputs {
            var bytes = fuzzer.config()
            let mutated = fuzzer.chance(30)
            if mutated { fuzzer.mutate(&bytes) }
            let mustRefuse = bytes.contains(0) || (!mutated && fuzzer.escapedNUL)
            if let dump = Self.dumpPath { FileManager.default.createFile(atPath: dump, contents: Data(bytes)) }
            do {
                let config = try ConfigParser.load(bytes: bytes, file: "/fuzz/vm.toml")
                accepted += 1
                if mustRefuse {
                    Issue.record("input \(i) (seed \(Self.seed)) holds a NUL but was accepted: \(String(decoding: bytes, as: UTF8.self))")
                    return
                }
                let strings = [config.name] + config.devices.flatMap { d in
                    [d.id, d.plugin, d.path ?? ""] + d.parameters.values.compactMap { if case .string(let s) = $0 { s } else { nil } }
                }
                if strings.contains(where: { $0.contains("\0") }) {
                    Issue.record("input \(i) (seed \(Self.seed)): accepted a value with a NUL")
                    return
                }
                do {
                    _ = try DeviceResolver.resolve(config, registry: registry)
                    resolved += 1
                } catch {
                    if error.description.contains("\n") {
                        Issue.record("input \(i) (seed \(Self.seed)): a device error spans lines: \(error)")
                        return
                    }
                }
            } catch {
                refused += 1
                if error.description.contains("\n") || error.description.contains("\r") {
                    Issue.record("input \(i) (seed \(Self.seed)): the error spans lines: \(error)")
                    return
                }
            }
        }
        let elapsed = ContinuousClock.now - started
        print("config fuzz: \(Self.inputs) inputs, seed \(Self.seed), \(accepted) parsed (\(resolved) resolved against the plugins), \(refused) refused, \(elapsed)")
        #expect(accepted + refused == Self.inputs)
        // The generator must reach both sides, or it tests nothing.
        #expect(accepted > 0 && refused > 0 && resolved > 0)
    }
}
