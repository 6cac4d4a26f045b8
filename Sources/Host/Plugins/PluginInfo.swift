import VeneerPluginABI

/// What a plugin declares about itself, read out of its C descriptor into Swift values.
public struct PluginInfo: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case emulated, synthetic, passthrough
    }

    public var name: String
    public var version: String
    public var summary: String
    public var kind: Kind
    public var abiMajor: UInt16
    public var abiMinor: UInt16
    public var stateVersion: UInt32
    public var concurrent: Bool
    public var parameters: [ParameterSchema]

    public var abiVersion: String { "\(abiMajor).\(abiMinor)" }
}

/// One declared parameter.
public struct ParameterSchema: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case bool
        case int(min: Int64, max: Int64)
        case string
        case choice([String])
        /// An integer that must be one of these (ABI 1.6).
        case intChoice([Int64])
        /// A host file; relative paths resolve against the config file's directory, except ""
        /// and `words` (`none`, `stdout`), which pass through (ABI 1.6).
        case path(words: [String])
        /// An array of tables (`[[device.NAME]]`), each validated against `members`, between
        /// `min` and `max` of them (ABI 1.7). Members are never groups themselves.
        case group(min: Int, max: Int, members: [ParameterSchema])

        public var typeName: String {
            switch self {
            case .bool: "bool"
            case .int(let min, let max): "integer \(min)...\(max)"
            case .string: "string"
            case .choice(let c): "one of \(c.joined(separator: ", "))"
            case .intChoice(let c): "integer, one of \(c.map { "\($0)" }.joined(separator: ", "))"
            case .path(let words): words.isEmpty ? "path" : "path or \(words.joined(separator: ", "))"
            case .group(let min, let max, _): min == max ? "group of \(min) tables" : "group of \(min)...\(max) tables"
            }
        }
    }

    public var name: String
    public var doc: String
    public var kind: Kind
    /// The textual default, or nil when the parameter is required.
    public var defaultText: String?

    public init(name: String, doc: String, kind: Kind, defaultText: String?) {
        self.name = name
        self.doc = doc
        self.kind = kind
        self.defaultText = defaultText
    }
}

/// A validated parameter value, in schema order, ready for `create`.
public struct ParameterValue: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case bool(Bool)
        case int(Int64)
        case string(String)
        /// One array of values per table, each in member order with defaults filled in.
        case group([[ParameterValue]])
    }

    public var name: String
    public var value: Value
}
