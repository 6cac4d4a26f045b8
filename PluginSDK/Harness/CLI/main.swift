import VeneerHarness
#if canImport(Glibc)
import Glibc
#endif

// veneer-plugin-test: runs the conformance suite on one plugin and prints a line per check.
// Exit status: 0 all checks passed, 1 a check failed or the plugin did not load, 2 usage error.

let usage = """
    usage: veneer-plugin-test PLUGIN [--param KEY=VALUE ...] [--seed N] [--accesses N]

      PLUGIN            a plugin .so (a path, or a file name ending in .so) or a plugin name
                        looked up in VENEER_PLUGIN_PATH and next to this executable
      --param K=V       a parameter value, as a config would give it (repeatable)
      --seed N          seed of the random checks (default 0x\(String(ConformanceSuite.defaultSeed, radix: 16)))
      --accesses N      number of random guest accesses (default \(ConformanceSuite.defaultAccesses))
    """

struct UsageError: Error {
    var message: String
}

/// Straight to fd 2: the C `stderr` global is shared mutable state to Swift 6.
func writeError(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// Decimal or 0x hex; the seed may use all 64 bits.
func parseUnsigned(_ text: String) -> UInt64? {
    let digits = text.filter { $0 != "_" }
    if digits.hasPrefix("0x") || digits.hasPrefix("0X") { return UInt64(digits.dropFirst(2), radix: 16) }
    return UInt64(digits)
}

/// The suite to run, or nil when help was asked for.
func parseArguments(_ arguments: [String]) throws(UsageError) -> ConformanceSuite? {
    var plugin: String?
    var parameters: [String: String] = [:]
    var seed = ConformanceSuite.defaultSeed
    var accesses = ConformanceSuite.defaultAccesses
    var rest = arguments[...]

    func value(for option: String) throws(UsageError) -> String {
        guard let value = rest.popFirst() else { throw UsageError(message: "\(option) needs a value") }
        return value
    }

    while let argument = rest.popFirst() {
        switch argument {
        case "-h", "--help":
            return nil
        case "--param":
            let pair = try value(for: argument)
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                throw UsageError(message: "--param wants KEY=VALUE, got '\(pair)'")
            }
            let key = String(pair[..<eq])
            guard parameters[key] == nil else { throw UsageError(message: "parameter '\(key)' given twice") }
            parameters[key] = String(pair[pair.index(after: eq)...])
        case "--seed":
            let text = try value(for: argument)
            guard let n = parseUnsigned(text) else { throw UsageError(message: "--seed wants an unsigned integer, got '\(text)'") }
            seed = n
        case "--accesses":
            let text = try value(for: argument)
            guard let n = parseUnsigned(text), n <= 100_000_000 else {
                throw UsageError(message: "--accesses wants an integer 0...100000000, got '\(text)'")
            }
            accesses = Int(n)
        case _ where argument.hasPrefix("-"):
            throw UsageError(message: "unknown option '\(argument)'")
        default:
            guard plugin == nil else { throw UsageError(message: "more than one plugin given ('\(plugin ?? "")', '\(argument)')") }
            plugin = argument
        }
    }
    guard let plugin else { throw UsageError(message: "no plugin given") }
    return ConformanceSuite(plugin: plugin, parameters: parameters, seed: seed, accesses: accesses)
}

let suite: ConformanceSuite
do {
    guard let parsed = try parseArguments(Array(CommandLine.arguments.dropFirst())) else {
        print(usage)
        exit(0)
    }
    suite = parsed
} catch {
    writeError("veneer-plugin-test: \(error.message)")
    writeError(usage)
    exit(2)
}

let report = suite.run()
if let loadError = report.loadError {
    // One line naming the file and the reason (the load error's own description does both).
    writeError("veneer-plugin-test: \(loadError)")
    exit(1)
}
for check in report.checks { print(check.line) }
print(report.summary)
exit(report.allPassed ? 0 : 1)
