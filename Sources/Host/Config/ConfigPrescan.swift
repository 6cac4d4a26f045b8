/// Checks a config's raw text before the TOML library sees it, for what that library gets wrong:
///
/// - NUL: TOMLKit hands strings to Swift as C strings, so a NUL (raw, or written `\u0000` /
///   `\U00000000` in a basic string) silently cuts a path, plugin name or command line short.
///   Any NUL is refused, naming the line and the key it sits in.
/// - Nesting: the parser recurses per level of dotted key, table header and inline array/table,
///   so a very deep one overflows its stack. The total depth (header components + key components
///   + open brackets and braces + keys inside inline tables) is bounded by `maxDepth`.
///
/// - Assumptions the parser makes without checking (assertion failures in debug builds, undefined
///   behaviour in release): a table header's first key starts with a key character or a quote
///   (`[,a]` breaks it), and an array element starts like a value (`[ }` breaks it). Both are
///   refused here, with the line and column.
///
/// The scan is a small TOML tokenizer that only tracks strings, comments, keys and brackets. It
/// reports no other syntax errors: when the text stops making sense to it, it skips to the
/// next line and leaves the diagnosis to the parser. Every byte passes through `next()`, so a raw
/// NUL is found wherever it is; escapes are decoded wherever a basic string is recognised. Its own
/// recursion is bounded by `maxDepth` before each step down.
struct ConfigPrescan {
    /// Levels of nesting a config may use; a Veneer config needs 3 (`[[boot.module]]` + `path`).
    static let maxDepth = 32

    private let bytes: [UInt8]
    private let file: String
    private var index = 0
    private var line = 1
    private var lineStart = 0
    /// The current table as messages spell it (`device[1]`), and its depth.
    private var table: [String] = []
    private var tableDepth = 0
    private var arrayTableCounts: [String: Int] = [:]
    /// The key whose value is being scanned, for messages; empty while no key is known.
    private var key: [String] = []

    private init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    /// Throws the first NUL or over-deep nesting in `text`, or returns when there is none.
    static func check(_ bytes: [UInt8], file: String) throws(ConfigError) {
        var scan = ConfigPrescan(bytes: bytes, file: file)
        try scan.run()
    }

    // MARK: errors

    private func error(at position: Int, _ reason: String) -> ConfigError {
        let location = key.isEmpty ? "\(file):\(line):\(position - lineStart + 1)" : "\(file):\(line)"
        return ConfigError(file: location, key: Self.display(key), reason: reason)
    }

    /// A key path for a message, shortened when it is absurdly deep.
    static func display(_ components: [String]) -> String {
        let shown = components.prefix(8).map { $0.count > 40 ? String($0.prefix(40)) + "…" : $0 }
        var text = shown.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        if components.count > shown.count { text += "… (\(components.count) components)" }
        return text
    }

    private func nulError(at position: Int) -> ConfigError {
        error(at: position, "contains a NUL character (U+0000); TOML text may not contain one and it would cut the value short")
    }

    private func depthError(at position: Int, _ depth: Int) -> ConfigError {
        error(at: position, "nested \(depth) levels deep (dotted keys, table headers, arrays and inline tables); at most \(Self.maxDepth) are allowed")
    }

    // MARK: bytes

    private var atEnd: Bool { index >= bytes.count }
    private func peek(_ offset: Int = 0) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }

    /// Consumes one byte, refusing NUL and counting lines.
    @discardableResult
    private mutating func next() throws(ConfigError) -> UInt8 {
        let b = bytes[index]
        if b == 0 { throw nulError(at: index) }
        index += 1
        if b == UInt8(ascii: "\n") {
            line += 1
            lineStart = index
        }
        return b
    }

    private mutating func skipSpaces() throws(ConfigError) {
        while let b = peek(), b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") { try next() }
    }

    /// Spaces, newlines and comments (inside arrays, and between statements).
    private mutating func skipBlank() throws(ConfigError) {
        while let b = peek() {
            if b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r") || b == UInt8(ascii: "\n") {
                try next()
            } else if b == UInt8(ascii: "#") {
                try skipLine()
            } else {
                return
            }
        }
    }

    /// Up to and including the next newline.
    private mutating func skipLine() throws(ConfigError) {
        while !atEnd {
            if try next() == UInt8(ascii: "\n") { return }
        }
    }

    // MARK: statements

    private mutating func run() throws(ConfigError) {
        while true {
            try skipBlank()
            guard let b = peek() else { return }
            key = []
            let understood = b == UInt8(ascii: "[") ? try header() : try keyValue()
            if understood {
                // The rest of the line: spaces and a comment, or something the parser will name.
                try skipSpaces()
                if let c = peek(), c != UInt8(ascii: "\n") && c != UInt8(ascii: "\r") && c != UInt8(ascii: "#") { key = [] }
            }
            try skipLine()
        }
    }

    /// `[a.b]` or `[[a.b]]`: the new current table.
    private mutating func header() throws(ConfigError) -> Bool {
        try next()
        let isArray = peek() == UInt8(ascii: "[")
        if isArray { try next() }
        table = []
        tableDepth = 0
        // The TOML library assumes (asserts in debug builds) that a header's first key starts
        // with a key character or a quote; anything else would crash it, so it is refused here.
        try skipSpaces()
        if let c = peek(), !Self.isBareKeyByte(c), c != UInt8(ascii: "\""), c != UInt8(ascii: "'"),
           c != UInt8(ascii: "]"), isArray || c != UInt8(ascii: "[") {
            throw ConfigError(file: "\(file):\(line):\(index - lineStart + 1)", key: "",
                              reason: "a table header must start with a key (a bare key or a quoted one)")
        }
        guard let components = try keyPath(startDepth: 0) else { return false }
        guard peek() == UInt8(ascii: "]") else { return false }
        try next()
        if isArray {
            guard peek() == UInt8(ascii: "]") else { return false }
            try next()
        }
        // Each component that names an array of tables gets its element's index, counted per
        // parent element (`[[device.disk]]` under device[1] starts again at disk[0]); one
        // before the last refers to the latest element of its array, as TOML attaches it.
        var name: [String] = []
        for (i, component) in components.enumerated() {
            let path = (name + [component]).joined(separator: ".")
            if isArray && i == components.count - 1 {
                let n = arrayTableCounts[path, default: 0]
                arrayTableCounts[path] = n + 1
                name.append(component + "[\(n)]")
            } else if let n = arrayTableCounts[path] {
                name.append(component + "[\(n - 1)]")
            } else {
                name.append(component)
            }
        }
        table = name
        tableDepth = components.count
        return true
    }

    /// `a.b = value` in the current table.
    private mutating func keyValue() throws(ConfigError) -> Bool {
        guard let components = try keyPath(startDepth: tableDepth) else { return false }
        guard peek() == UInt8(ascii: "=") else { return false }
        try next()
        key = table + components
        return try value(depth: tableDepth + components.count)
    }

    /// A dotted key, spaces around the dots allowed; nil when the text is not a key. Refuses a key
    /// that would nest deeper than `maxDepth`, counting `startDepth` levels above it; `outer` is
    /// the key of the inline table it sits in (for the message).
    private mutating func keyPath(startDepth: Int, under outer: [String] = []) throws(ConfigError) -> [String]? {
        var components: [String] = []
        while true {
            try skipSpaces()
            let start = index
            guard let part = try simpleKey() else { return nil }
            components.append(part)
            if startDepth + components.count > Self.maxDepth {
                key = (outer.isEmpty ? table : outer) + components
                throw depthError(at: start, startDepth + components.count)
            }
            try skipSpaces()
            guard peek() == UInt8(ascii: ".") else { return components }
            try next()
        }
    }

    /// A bare key, or a basic or literal string used as a key.
    private mutating func simpleKey() throws(ConfigError) -> String? {
        guard let b = peek() else { return nil }
        if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
            let start = index
            guard try string() else { return nil }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }
        let start = index
        while let c = peek(), Self.isBareKeyByte(c) { try next() }
        return index > start ? String(decoding: bytes[start..<index], as: UTF8.self) : nil
    }

    /// Quotes, brackets, and what numbers, booleans, inf/nan and dates start with.
    static func canStartValue(_ c: UInt8) -> Bool {
        c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") || c == UInt8(ascii: "[") || c == UInt8(ascii: "{")
            || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
            || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
    }

    static func isBareKeyByte(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }

    // MARK: values

    /// One value at `depth` (the levels above it); false when the text is not a value.
    private mutating func value(depth: Int) throws(ConfigError) -> Bool {
        try skipSpaces()
        guard let b = peek() else { return false }
        switch b {
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            return try string()
        case UInt8(ascii: "["):
            guard depth + 1 <= Self.maxDepth else { throw depthError(at: index, depth + 1) }
            try next()
            while true {
                try skipBlank()
                guard let c = peek() else { return false }
                if c == UInt8(ascii: "]") { try next(); return true }
                // The TOML library assumes an array element starts like a value (it asserts on
                // `[ }` or a U+2028 there); anything that cannot start one is refused here.
                guard Self.canStartValue(c) else {
                    throw error(at: index, "expected a value or ']' in the array")
                }
                guard try value(depth: depth + 1) else { return false }
                try skipBlank()
                guard let d = peek() else { return false }
                try next()
                if d == UInt8(ascii: "]") { return true }
                guard d == UInt8(ascii: ",") else { return false }
            }
        case UInt8(ascii: "{"):
            guard depth + 1 <= Self.maxDepth else { throw depthError(at: index, depth + 1) }
            try next()
            let outer = key
            defer { key = outer }
            while true {
                try skipSpaces()
                guard let c = peek() else { return false }
                if c == UInt8(ascii: "}") { try next(); return true }
                key = outer
                guard let components = try keyPath(startDepth: depth + 1, under: outer) else { return false }
                guard peek() == UInt8(ascii: "=") else { return false }
                try next()
                key = outer + components
                guard try value(depth: depth + 1 + components.count) else { return false }
                try skipSpaces()
                guard let d = peek() else { return false }
                try next()
                if d == UInt8(ascii: "}") { return true }
                guard d == UInt8(ascii: ",") else { return false }
            }
        default:
            // Numbers, booleans, dates: everything up to a delimiter (dates may hold a space).
            let start = index
            while let c = peek(), c != UInt8(ascii: ","), c != UInt8(ascii: "]"), c != UInt8(ascii: "}"),
                  c != UInt8(ascii: "#"), c != UInt8(ascii: "\n"), c != UInt8(ascii: "\r") {
                try next()
            }
            return index > start
        }
    }

    /// A basic, literal, multi-line basic or multi-line literal string, its escapes checked for
    /// NUL; false when it does not end.
    private mutating func string() throws(ConfigError) -> Bool {
        let quote = try next()
        let basic = quote == UInt8(ascii: "\"")
        let multiLine = peek() == quote && peek(1) == quote
        if multiLine {
            try next()
            try next()
        } else if peek() == quote {
            try next()   // the empty string
            return true
        }
        while let b = peek() {
            if b == quote {
                if !multiLine { try next(); return true }
                if peek(1) == quote && peek(2) == quote {
                    try next(); try next(); try next()
                    // Up to two more quotes belong to the content (`""""` ends with one inside).
                    for _ in 0..<2 where peek() == quote { try next() }
                    return true
                }
                try next()
                continue
            }
            if b == UInt8(ascii: "\n") && !multiLine { return false }
            if basic && b == UInt8(ascii: "\\") {
                let escapeStart = index
                try next()
                guard let e = peek() else { return false }
                try next()
                let digits = e == UInt8(ascii: "u") ? 4 : e == UInt8(ascii: "U") ? 8 : 0
                if digits > 0 {
                    var scalar: UInt32 = 0
                    var valid = true
                    for _ in 0..<digits {
                        guard let h = peek(), let v = Self.hexValue(h) else { valid = false; break }
                        try next()
                        scalar = scalar << 4 | v
                    }
                    if valid && scalar == 0 { throw nulError(at: escapeStart) }
                }
                continue
            }
            try next()
        }
        return false
    }

    static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(c - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
