import Foundation
import Testing
import VeneerHarness
import VeneerHost

/// Every built plugin's parameter schema agrees with its own documentation: defaults validate,
/// ranges are enforced at their edges, values a doc enumerates are the only ones accepted, a
/// doc's port count fits under the range's maximum, and what the schema accepts the plugin can
/// create. New plugins are audited without anyone remembering to add them here.
struct ParameterSchemaAuditTests {
    static let plugins: [PluginLibrary] = PluginRegistry.standard().all().plugins.sorted { $0.info.name < $1.info.name }
    static let names = plugins.map(\.info.name)

    static func schema(_ name: String) -> [ParameterSchema] {
        plugins.first { $0.info.name == name }?.info.parameters ?? []
    }

    static func accepts(_ spec: ParameterSchema, _ input: ParameterValidation.Input) -> Bool {
        (try? ParameterValidation.resolve([spec.name: input], schema: [spec])) != nil
    }

    @Test func theAuditSeesThePlugins() {
        for name in ["serial16550", "debug-exit", "pit8254", "cmos-rtc", "i8042", "acpi-pm", "pci-testdev", "vmbus-echo"] {
            #expect(Self.names.contains(name))
        }
    }

    @Test(arguments: names)
    func defaultsValidate(plugin: String) {
        let schema = Self.schema(plugin)
        #expect(throws: Never.self) { try ParameterValidation.resolve([:], schema: schema.filter { $0.defaultText != nil }) }
    }

    @Test(arguments: names)
    func rangesAndChoicesAreEnforced(plugin: String) {
        for spec in Self.schema(plugin) {
            switch spec.kind {
            case .int(let min, let max):
                #expect(Self.accepts(spec, .int(min)) && Self.accepts(spec, .int(max)), "\(plugin).\(spec.name)")
                if min > Int64.min { #expect(!Self.accepts(spec, .int(min - 1)), "\(plugin).\(spec.name) below \(min)") }
                if max < Int64.max { #expect(!Self.accepts(spec, .int(max + 1)), "\(plugin).\(spec.name) above \(max)") }
            case .intChoice(let values):
                for v in values { #expect(Self.accepts(spec, .int(v)), "\(plugin).\(spec.name) = \(v)") }
                let lo = values.min() ?? 0, hi = values.max() ?? 0
                for v in (lo - 1)...(hi + 1) where !values.contains(v) {
                    #expect(!Self.accepts(spec, .int(v)), "\(plugin).\(spec.name) = \(v) is not documented")
                }
            case .choice(let words):
                for w in words { #expect(Self.accepts(spec, .string(w)), "\(plugin).\(spec.name) = \(w)") }
                #expect(!Self.accepts(spec, .string(words.joined() + "x")))
            case .path(let words):
                for w in words + [""] {
                    let v = try? ParameterValidation.resolve([spec.name: .string(w)], schema: [spec], baseDirectory: "/cfg")
                    #expect(v?.first?.value == .string(w), "\(plugin).\(spec.name): '\(w)' is a word, not a path")
                }
                let v = try? ParameterValidation.resolve([spec.name: .string("f")], schema: [spec], baseDirectory: "/cfg")
                #expect(v?.first?.value == .string("/cfg/f"))
            case .bool, .string:
                break
            }
            // Every kind refuses a value of another type.
            let wrong: ParameterValidation.Input = if case .bool = spec.kind { .int(1) } else { .bool(true) }
            #expect(!Self.accepts(spec, wrong), "\(plugin).\(spec.name) accepted \(wrong)")
        }
    }

    /// A doc that lists integers, "(1, 2 or 4)", must be an enumeration of exactly those.
    @Test(arguments: names)
    func enumeratedDocsAreEnumerations(plugin: String) {
        for spec in Self.schema(plugin) {
            guard let listed = Self.listedIntegers(spec.doc) else { continue }
            #expect(spec.kind == .intChoice(listed), "\(plugin).\(spec.name): doc lists \(listed), schema is \(spec.kind.typeName)")
        }
    }

    /// "first of the eight I/O ports", "(4 ports": the range's maximum leaves room for them all.
    @Test(arguments: names)
    func portBlocksFitUnderTheirMaximum(plugin: String) {
        for spec in Self.schema(plugin) {
            guard let count = Self.portCount(spec.doc), case .int(_, let max) = spec.kind else { continue }
            #expect(max + Int64(count) <= 0x10000, "\(plugin).\(spec.name): \(count) ports from \(max) run past 0xffff")
        }
    }

    /// What the schema accepts, the plugin creates: each integer at its edges (the others at
    /// their defaults) makes a working device.
    @Test(arguments: names)
    func edgeValuesCreate(plugin: String) {
        for spec in Self.schema(plugin) {
            let edges: [Int64] = switch spec.kind {
            case .int(let min, let max): [min, max]
            case .intChoice(let values): values
            default: []
            }
            for v in edges {
                var parameters: [String: ParameterValidation.Input] = [spec.name: .int(v)]
                if Self.schema(plugin).contains(where: { $0.name == "output" }) { parameters["output"] = .string("none") }
                do { _ = try PluginHarness(plugin: plugin, parameters: parameters) } catch {
                    Issue.record("\(plugin).\(spec.name) = \(v) is in the schema's range but create failed: \(error)")
                }
            }
        }
    }

    /// Integers a doc enumerates in parentheses: "(1, 2 or 4)" gives [1, 2, 4].
    static func listedIntegers(_ doc: String) -> [Int64]? {
        for group in doc.split(separator: "(").dropFirst() {
            guard let body = group.split(separator: ")", maxSplits: 1, omittingEmptySubsequences: false).first else { continue }
            let words = body.replacingOccurrences(of: " or ", with: ", ").split(separator: ",")
                .map { $0.trimmingCharacters(in: .whitespaces) }
            let values = words.compactMap { Int64($0) }
            if values.count >= 2, values.count == words.count { return values }
        }
        return nil
    }

    /// How many consecutive ports a doc says the parameter's value starts.
    static func portCount(_ doc: String) -> Int? {
        let numbers = ["two": 2, "four": 4, "eight": 8, "sixteen": 16]
        let words = doc.lowercased().replacingOccurrences(of: "(", with: " ").split(separator: " ").map(String.init)
        for (i, word) in words.enumerated() where i + 1 < words.count {
            guard let n = Int(word) ?? numbers[word] else { continue }
            let next = words[i + 1], after = i + 2 < words.count ? words[i + 2] : ""
            if next.hasPrefix("ports") || (after.hasPrefix("ports") && (next == "i/o" || next == "pit")) { return n }
        }
        return nil
    }
}
