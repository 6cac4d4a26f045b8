/// Checks configured values against a plugin's schema: the same rules for the VM config, the
/// harness and `veneer-plugin-test`, so a plugin sees identical input everywhere.
public enum ParameterValidation {
    /// A value as it came from a config file.
    public enum Input: Sendable, Equatable {
        case bool(Bool)
        case int(Int64)
        case string(String)
        /// A parameter group: one dictionary per table (`[[device.NAME]]`), in file order.
        case group([[String: Input]])

        var typeName: String {
            switch self {
            case .bool: "a boolean"
            case .int: "an integer"
            case .string: "a string"
            case .group: "an array of tables"
            }
        }
    }

    public struct Problem: Error, CustomStringConvertible, Sendable, Equatable {
        public var key: String
        public var reason: String
        public var description: String { "\(key): \(reason)" }

        public init(key: String, reason: String) {
            self.key = key
            self.reason = reason
        }
    }

    /// All parameters of `schema` in order, from `inputs` or defaults. Unknown keys, missing
    /// required ones and ill-typed or out-of-range values are problems naming the key. Relative
    /// paths (`.path` parameters) resolve against `baseDirectory` (the config file's directory)
    /// when one is given, and stay as written (relative to the working directory) otherwise.
    /// A group's tables are each resolved against its members by these same rules; a problem in
    /// one names the group, the table's index and the key: `disk[2].cache`.
    public static func resolve(_ inputs: [String: Input], schema: [ParameterSchema],
                               baseDirectory: String? = nil) throws(Problem) -> [ParameterValue] {
        let known = Set(schema.map(\.name))
        if let unknown = inputs.keys.sorted().first(where: { !known.contains($0) }) {
            let names = schema.map(\.name).joined(separator: ", ")
            throw Problem(key: unknown, reason: "unknown parameter (this plugin takes: \(names.isEmpty ? "none" : names))")
        }
        var values: [ParameterValue] = []
        for spec in schema {
            if case .group(let min, let max, let members) = spec.kind {
                values.append(ParameterValue(name: spec.name, value: try group(inputs[spec.name], name: spec.name, min: min, max: max,
                                                                             members: members, baseDirectory: baseDirectory)))
            } else if let input = inputs[spec.name] {
                values.append(ParameterValue(name: spec.name, value: try check(input, spec, baseDirectory: baseDirectory)))
            } else if let text = spec.defaultText {
                values.append(ParameterValue(name: spec.name, value: try parse(text: text, for: spec, baseDirectory: baseDirectory)))
            } else {
                throw Problem(key: spec.name, reason: "required parameter missing (\(spec.kind.typeName): \(spec.doc))")
            }
        }
        return values
    }

    /// A group's tables (absent means none), counted against [min, max], each table resolved
    /// against the members.
    private static func group(_ input: Input?, name: String, min: Int, max: Int, members: [ParameterSchema],
                              baseDirectory: String?) throws(Problem) -> ParameterValue.Value {
        let tables: [[String: Input]]
        switch input {
        case nil: tables = []
        case .group(let t)?: tables = t
        case let other?:
            throw Problem(key: name, reason: "expected an array of tables ([[device.\(name)]], one table each), got \(other.typeName)")
        }
        guard tables.count >= min else {
            throw Problem(key: name, reason: tables.isEmpty
                ? "required: at least \(min) [[device.\(name)]] table\(min == 1 ? "" : "s")"
                : "\(tables.count) table\(tables.count == 1 ? "" : "s"), fewer than the \(min) required")
        }
        guard tables.count <= max else { throw Problem(key: name, reason: "\(tables.count) tables, more than \(max)") }
        var result: [[ParameterValue]] = []
        for (i, table) in tables.enumerated() {
            do throws(Problem) {
                if let unknown = table.keys.sorted().first(where: { key in !members.contains { $0.name == key } }) {
                    let names = members.map(\.name).joined(separator: ", ")
                    throw Problem(key: unknown, reason: "unknown key (a \(name) table takes: \(names))")
                }
                result.append(try resolve(table, schema: members, baseDirectory: baseDirectory))
            } catch {
                throw Problem(key: "\(name)[\(i)].\(error.key)", reason: error.reason)
            }
        }
        return .group(result)
    }

    static func check(_ input: Input, _ spec: ParameterSchema, baseDirectory: String? = nil) throws(Problem) -> ParameterValue.Value {
        switch (spec.kind, input) {
        case (.intChoice(let choices), .int(let i)):
            guard choices.contains(i) else {
                throw Problem(key: spec.name, reason: "\(i) is not one of \(choices.map { "\($0)" }.joined(separator: ", "))")
            }
            return .int(i)
        case (.path(let words), .string(let s)):
            guard let directory = baseDirectory, !s.isEmpty, !words.contains(s), !s.hasPrefix("/") else { return .string(s) }
            return .string("\(directory)/\(s)")
        case (.bool, .bool(let b)): return .bool(b)
        case (.int(let min, let max), .int(let i)):
            guard i >= min, i <= max else {
                throw Problem(key: spec.name, reason: "\(i) (\(hex(UInt64(bitPattern: i)))) is outside \(min)...\(max)")
            }
            return .int(i)
        case (.string, .string(let s)): return .string(s)
        case (.choice(let choices), .string(let s)):
            guard choices.contains(s) else {
                throw Problem(key: spec.name, reason: "'\(s)' is not one of \(choices.joined(separator: ", "))")
            }
            return .string(s)
        default:
            throw Problem(key: spec.name, reason: "expected \(spec.kind.typeName), got \(input.typeName)")
        }
    }

    /// Parses a textual default (or a value typed on a command line).
    public static func parse(text: String, for spec: ParameterSchema, baseDirectory: String? = nil) throws(Problem) -> ParameterValue.Value {
        switch spec.kind {
        case .bool:
            switch text {
            case "true": return .bool(true)
            case "false": return .bool(false)
            default: throw Problem(key: spec.name, reason: "'\(text)' is not true or false")
            }
        case .int, .intChoice:
            guard let value = parseInteger(text) else { throw Problem(key: spec.name, reason: "'\(text)' is not an integer") }
            return try check(.int(value), spec)
        case .string, .choice, .path:
            return try check(.string(text), spec, baseDirectory: baseDirectory)
        case .group:
            throw Problem(key: spec.name, reason: "a parameter group has no textual value; it is written as [[device.\(spec.name)]] tables")
        }
    }

    /// Decimal, 0x hex, 0o octal or 0b binary, with optional sign and underscores (as TOML).
    public static func parseInteger(_ text: String) -> Int64? {
        var s = Substring(text.filter { $0 != "_" })
        var negative = false
        if s.first == "-" || s.first == "+" {
            negative = s.first == "-"
            s = s.dropFirst()
        }
        let radix: Int
        if s.hasPrefix("0x") { radix = 16; s = s.dropFirst(2) }
        else if s.hasPrefix("0o") { radix = 8; s = s.dropFirst(2) }
        else if s.hasPrefix("0b") { radix = 2; s = s.dropFirst(2) }
        else { radix = 10 }
        guard !s.isEmpty, let magnitude = UInt64(s, radix: radix) else { return nil }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }
}
