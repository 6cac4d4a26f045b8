import Foundation
import Testing
import VeneerHarness
import VeneerHost

/// Every built plugin's parameter schema agrees with its own documentation: defaults validate,
/// ranges are enforced at their edges, values a doc enumerates are the only ones accepted, a
/// doc's port count fits under the range's maximum, and what the schema accepts the plugin can
/// create. A parameter group's members are audited by the same rules, through the group (one
/// table with the member under test, the group's other required members given sample values),
/// and the group's table count is enforced at its bounds. New plugins are audited without anyone
/// remembering to add them here.
struct ParameterSchemaAuditTests {
    static let plugins: [PluginLibrary] = PluginRegistry.standard().all().plugins.sorted { $0.info.name < $1.info.name }
    static let names = plugins.map(\.info.name)

    static func schema(_ name: String) -> [ParameterSchema] {
        plugins.first { $0.info.name == name }?.info.parameters ?? []
    }

    static func accepts(_ spec: ParameterSchema, _ input: ParameterValidation.Input) -> Bool {
        (try? ParameterValidation.resolve([spec.name: input], schema: [spec])) != nil
    }

    /// Every spec of a plugin: its parameters and its groups' members.
    static func allSpecs(_ name: String) -> [ParameterSchema] {
        schema(name).flatMap { spec -> [ParameterSchema] in
            if case .group(_, _, let members) = spec.kind { return [spec] + members }
            return [spec]
        }
    }

    /// A value each kind accepts, for members a table needs besides the one under test.
    static func sample(_ spec: ParameterSchema) -> ParameterValidation.Input {
        switch spec.kind {
        case .bool: .bool(false)
        case .int(let min, _): .int(min)
        case .intChoice(let values): .int(values.first ?? 0)
        case .string: .string("x")
        case .choice(let words): .string(words.first ?? "")
        case .path(let words): .string(words.first ?? "f")
        case .group: .group([])
        }
    }

    /// One table of `members` with the required ones sampled.
    static func sampleTable(_ members: [ParameterSchema]) -> [String: ParameterValidation.Input] {
        var table: [String: ParameterValidation.Input] = [:]
        for m in members where m.defaultText == nil { table[m.name] = sample(m) }
        return table
    }

    /// How a spec is exercised: straight, or as a member inside one table of its group. The
    /// closure gives the value the spec resolved to, or nil when validation refused the input.
    struct Probe {
        var label: String
        var spec: ParameterSchema
        var resolve: (ParameterValidation.Input, _ baseDirectory: String?) -> ParameterValue.Value?

        func accepts(_ input: ParameterValidation.Input) -> Bool { resolve(input, nil) != nil }
    }

    static func probes(_ plugin: String) -> [Probe] {
        schema(plugin).flatMap { spec -> [Probe] in
            let direct = Probe(label: "\(plugin).\(spec.name)", spec: spec) { input, base in
                (try? ParameterValidation.resolve([spec.name: input], schema: [spec], baseDirectory: base))?.first?.value
            }
            guard case .group(let min, _, let members) = spec.kind else { return [direct] }
            return members.map { m in
                Probe(label: "\(plugin).\(spec.name)[].\(m.name)", spec: m) { input, base in
                    var table = sampleTable(members)
                    table[m.name] = input
                    let tables = Array(repeating: sampleTable(members), count: Swift.max(min - 1, 0)) + [table]
                    let value = (try? ParameterValidation.resolve([spec.name: .group(tables)], schema: [spec], baseDirectory: base))?.first?.value
                    guard case .group(let resolved)? = value else { return nil }
                    return resolved.last?.first { $0.name == m.name }?.value
                }
            }
        }
    }

    @Test func theAuditSeesThePlugins() {
        for name in ["serial16550", "debug-exit", "pit8254", "cmos-rtc", "i8042", "acpi-pm", "pci-testdev", "vmbus-echo"] {
            #expect(Self.names.contains(name))
        }
    }

    /// At least one plugin (param-testdev) has a group, so the member audits below audit something.
    @Test func theAuditSeesAGroup() {
        let groups = Self.names.flatMap { name in
            Self.schema(name).compactMap { spec -> String? in
                if case .group = spec.kind { return "\(name).\(spec.name)" } else { return nil }
            }
        }
        #expect(groups.contains("param-testdev.disk"), "\(groups)")
        #expect(Self.probes("param-testdev").map(\.label).contains("param-testdev.disk[].cache"))
    }

    @Test(arguments: names)
    func defaultsValidate(plugin: String) {
        let schema = Self.schema(plugin)
        let optional = schema.filter { spec in
            if case .group(let min, _, _) = spec.kind { return min == 0 }
            return spec.defaultText != nil
        }
        #expect(throws: Never.self) { try ParameterValidation.resolve([:], schema: optional) }
    }

    @Test(arguments: names)
    func rangesAndChoicesAreEnforced(plugin: String) {
        for probe in Self.probes(plugin) {
            let spec = probe.spec, label = probe.label
            switch spec.kind {
            case .int(let min, let max):
                #expect(probe.accepts(.int(min)) && probe.accepts(.int(max)), "\(label)")
                if min > Int64.min { #expect(!probe.accepts(.int(min - 1)), "\(label) below \(min)") }
                if max < Int64.max { #expect(!probe.accepts(.int(max + 1)), "\(label) above \(max)") }
            case .intChoice(let values):
                for v in values { #expect(probe.accepts(.int(v)), "\(label) = \(v)") }
                let lo = values.min() ?? 0, hi = values.max() ?? 0
                for v in (lo - 1)...(hi + 1) where !values.contains(v) {
                    #expect(!probe.accepts(.int(v)), "\(label) = \(v) is not documented")
                }
            case .choice(let words):
                for w in words { #expect(probe.accepts(.string(w)), "\(label) = \(w)") }
                #expect(!probe.accepts(.string(words.joined() + "x")))
            case .path(let words):
                for w in words + [""] {
                    #expect(probe.resolve(.string(w), "/cfg") == .string(w), "\(label): '\(w)' is a word, not a path")
                }
                #expect(probe.resolve(.string("f"), "/cfg") == .string("/cfg/f"), "\(label)")
            case .group(let min, let max, let members):
                // Reached only for a member that is a group, which the loader refuses.
                Issue.record("\(label): a group inside a group (\(min)...\(max), \(members.count) members)")
            case .bool, .string:
                break
            }
            // Every kind refuses a value of another type.
            let wrong: ParameterValidation.Input = if case .bool = spec.kind { .int(1) } else { .bool(true) }
            #expect(!probe.accepts(wrong), "\(label) accepted \(wrong)")
        }
    }

    /// A group's table count is enforced at both bounds, and each table left to its defaults
    /// (required members sampled) validates.
    @Test(arguments: names)
    func groupBoundsAreEnforced(plugin: String) {
        for spec in Self.schema(plugin) {
            guard case .group(let min, let max, let members) = spec.kind else { continue }
            let table = Self.sampleTable(members)
            func accepts(_ count: Int) -> Bool { Self.accepts(spec, .group(Array(repeating: table, count: count))) }
            #expect(accepts(min) && accepts(max), "\(plugin).\(spec.name): \(min) and \(max) tables")
            if min > 0 { #expect(!accepts(min - 1), "\(plugin).\(spec.name): \(min - 1) tables") }
            #expect(!accepts(max + 1), "\(plugin).\(spec.name): \(max + 1) tables")
            #expect(spec.defaultText == nil, "\(plugin).\(spec.name): a group has no default")
            #expect(Self.accepts(spec, .group([table])) || max == 0, "\(plugin).\(spec.name): a table of defaults")
            #expect(!Self.accepts(spec, .group([table.merging(["no_such_member": .int(0)]) { a, _ in a }])),
                    "\(plugin).\(spec.name): an unknown member is refused")
            for m in members {
                if case .group = m.kind { Issue.record("\(plugin).\(spec.name).\(m.name): groups do not nest") }
            }
        }
    }

    /// A doc that lists integers, "(1, 2 or 4)", must be an enumeration of exactly those.
    @Test(arguments: names)
    func enumeratedDocsAreEnumerations(plugin: String) {
        for spec in Self.allSpecs(plugin) {
            guard let listed = Self.listedIntegers(spec.doc) else { continue }
            #expect(spec.kind == .intChoice(listed), "\(plugin).\(spec.name): doc lists \(listed), schema is \(spec.kind.typeName)")
        }
    }

    /// "first of the eight I/O ports", "(4 ports": the range's maximum leaves room for them all.
    @Test(arguments: names)
    func portBlocksFitUnderTheirMaximum(plugin: String) {
        for spec in Self.allSpecs(plugin) {
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
                for (name, value) in RequiredPortFixture.parameters(for: plugin) { parameters[name] = .string(value) }
                do { _ = try PluginHarness(plugin: plugin, parameters: parameters) } catch {
                    Issue.record("\(plugin).\(spec.name) = \(v) is in the schema's range but create failed: \(error)")
                }
            }
        }
    }

    /// The same for a group's integer members, in a single table whose other required members
    /// are sampled; skipped where a table needs a real file (a required path without words) or
    /// more than one table (the plugin may refuse sampled tables that repeat).
    @Test(arguments: names)
    func memberEdgeValuesCreate(plugin: String) {
        for spec in Self.schema(plugin) {
            guard case .group(let min, _, let members) = spec.kind, min <= 1 else { continue }
            let needsFile = members.contains { m in
                if case .path(let words) = m.kind { return m.defaultText == nil && words.isEmpty } else { return false }
            }
            if needsFile { continue }
            for m in members {
                let edges: [Int64] = switch m.kind {
                case .int(let lo, let hi): [lo, hi]
                case .intChoice(let values): values
                default: []
                }
                for v in edges {
                    var table = Self.sampleTable(members)
                    table[m.name] = .int(v)
                    var parameters: [String: ParameterValidation.Input] = [spec.name: .group([table])]
                    if Self.schema(plugin).contains(where: { $0.name == "output" }) { parameters["output"] = .string("none") }
                    for (name, value) in RequiredPortFixture.parameters(for: plugin) { parameters[name] = .string(value) }
                    do { _ = try PluginHarness(plugin: plugin, parameters: parameters) } catch {
                        Issue.record("\(plugin).\(spec.name)[0].\(m.name) = \(v) is in the schema's range but create failed: \(error)")
                    }
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
