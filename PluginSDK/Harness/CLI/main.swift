import VeneerHarness
import VeneerHost
#if canImport(Glibc)
import Glibc
#endif

// veneer-plugin-test: runs the conformance suite on one plugin and prints a line per check.
// Each check runs in a child process (this executable again, with --phase), so a plugin that
// crashes or hangs fails that check instead of ending the tool. Lines go to stdout; errors (a
// plugin that does not load, the crash line of a check) to stderr.
// Exit status: 0 all checks passed, 1 a check failed or the plugin did not load, 2 usage error.
// With --phase: 0 passed, 1 failed, 3 the plugin did not load, 71 the plugin crashed.

let usage = """
    usage: veneer-plugin-test PLUGIN [--param KEY=VALUE ...] [--seed N] [--accesses N] [--timeout S]

      PLUGIN            a plugin .so (a path, or a file name ending in .so) or a plugin name
                        looked up in VENEER_PLUGIN_PATH and next to this executable
      --param K=V       a parameter value, as a config would give it (repeatable); a group's
                        members per table: --param disk[0].lun=0 --param disk[0].path=a.img
      --seed N          seed of the random checks (default 0x\(String(ConformanceSuite.defaultSeed, radix: 16)))
      --accesses N      number of random guest accesses (default \(ConformanceSuite.defaultAccesses))
      --timeout S       seconds each check may take before it fails as hung (default \(defaultTimeout))
      --phase ID        run only this check, in this process (\(ConformanceSuite.Phase.allCases.map(\.id).joined(separator: ", ")));
                        the tool runs itself this way for every check
    """

let defaultTimeout = 600
/// --phase's status when the plugin did not load (its reason is on stderr).
let phaseLoadFailed: Int32 = 3

struct Options {
    var suite: ConformanceSuite
    var phase: ConformanceSuite.Phase?
    var timeout: Int
}

struct UsageError: Error {
    var message: String
}

/// Straight to fd 2: the C `stderr` global is shared mutable state to Swift 6.
func writeError(_ line: String) { writeRaw(Array((line + "\n").utf8)) }

func writeRaw(_ data: [UInt8]) {
    var bytes = data[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return }
        bytes = bytes.dropFirst(n)
    }
}

/// Decimal or 0x hex; the seed may use all 64 bits.
func parseUnsigned(_ text: String) -> UInt64? {
    let digits = text.filter { $0 != "_" }
    if digits.hasPrefix("0x") || digits.hasPrefix("0X") { return UInt64(digits.dropFirst(2), radix: 16) }
    return UInt64(digits)
}

/// What to run, or nil when help was asked for.
func parseArguments(_ arguments: [String]) throws(UsageError) -> Options? {
    var plugin: String?
    var parameters: [String: String] = [:]
    var seed = ConformanceSuite.defaultSeed
    var accesses = ConformanceSuite.defaultAccesses
    var phase: ConformanceSuite.Phase?
    var timeout = defaultTimeout
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
        case "--timeout":
            let text = try value(for: argument)
            guard let n = parseUnsigned(text), (1...86_400).contains(n) else {
                throw UsageError(message: "--timeout wants seconds 1...86400, got '\(text)'")
            }
            timeout = Int(n)
        case "--phase":
            let text = try value(for: argument)
            guard let p = ConformanceSuite.Phase(rawValue: text) else {
                throw UsageError(message: "--phase wants one of \(ConformanceSuite.Phase.allCases.map(\.id).joined(separator: ", ")), got '\(text)'")
            }
            phase = p
        case _ where argument.hasPrefix("-"):
            throw UsageError(message: "unknown option '\(argument)'")
        default:
            guard plugin == nil else { throw UsageError(message: "more than one plugin given ('\(plugin ?? "")', '\(argument)')") }
            plugin = argument
        }
    }
    guard let plugin else { throw UsageError(message: "no plugin given") }
    return Options(suite: ConformanceSuite(plugin: plugin, parameters: parameters, seed: seed, accesses: accesses),
                   phase: phase, timeout: timeout)
}

let options: Options
do {
    guard let parsed = try parseArguments(Array(CommandLine.arguments.dropFirst())) else {
        print(usage)
        exit(0)
    }
    options = parsed
} catch {
    writeError("veneer-plugin-test: \(error.message)")
    writeError(usage)
    exit(2)
}

if let phase = options.phase {
    // The child: one check. A crash in the plugin prints its line on stderr and exits 71.
    PluginCrashGuard.install(program: "veneer-plugin-test")
    let (check, loadError) = options.suite.run(phase: phase)
    if let loadError {
        writeError("veneer-plugin-test: \(loadError)")
        exit(phaseLoadFailed)
    }
    // On fd 3 when the tool runs this phase (stdout carries whatever the plugin prints), else stdout.
    if fcntl(ChildProcess.resultFD, F_GETFD) != -1 {
        let line = Array((check.line + "\n").utf8)
        _ = line.withUnsafeBytes { write(ChildProcess.resultFD, $0.baseAddress, $0.count) }
    } else {
        print(check.line)
    }
    exit(check.passed ? 0 : 1)
}

guard let executable = ChildProcess.ownExecutable() else {
    writeError("veneer-plugin-test: cannot find this executable (/proc/self/exe) to run the checks in")
    exit(1)
}
let arguments = Array(CommandLine.arguments.dropFirst())
var lines: [String] = []
var failed = 0
for phase in ConformanceSuite.Phase.allCases {
    let outcome: ChildProcess.Outcome
    do { outcome = try ChildProcess.run(executable, arguments + ["--phase", phase.id], timeout: options.timeout) } catch {
        writeError("veneer-plugin-test: \(error)")
        exit(1)
    }
    // Whatever the plugin printed and the child's errors (the crash line) go to stderr: stdout
    // is for the check lines.
    if !outcome.stdout.isEmpty { writeRaw(outcome.stdout.last == 0x0a ? outcome.stdout : outcome.stdout + [0x0a]) }
    if !outcome.stderr.isEmpty { writeRaw(Array(outcome.stderr.utf8)) }
    let reported = outcome.result.split(separator: "\n").last.map(String.init)
    let line: String
    let wellFormed = reported.map { $0.hasPrefix("PASS  ") || $0.hasPrefix("FAIL  ") } ?? false
    switch outcome.termination {
    case .exited(let status) where (status == 0 || status == 1) && wellFormed:
        line = reported ?? ""
    case .exited(phaseLoadFailed):
        exit(1)  // one line naming the file and the reason, on stderr already
    case .exited(PluginCrashGuard.exitStatus):
        let crash = outcome.stderr.split(separator: "\n").last { $0.hasPrefix("veneer-plugin-test: ") }
        line = "FAIL  \(phase.checkName): " + (crash.map { String($0.dropFirst("veneer-plugin-test: ".count)) } ?? "the plugin crashed")
    case .exited(let status):
        line = "FAIL  \(phase.checkName): the check's process exited with status \(status)"
    case .signalled(let signal):
        line = "FAIL  \(phase.checkName): the plugin crashed (\(ChildProcess.signalName(signal)))"
    case .timedOut:
        line = "FAIL  \(phase.checkName): did not finish within \(options.timeout) s (killed)"
    }
    print(line)
    lines.append(line)
    if !line.hasPrefix("PASS  ") {
        failed += 1
        // Nothing later can run without a plugin that loads and creates.
        if phase == .load || phase == .create { break }
    }
}
print("\(lines.count - failed) passed, \(failed) failed")
exit(failed == 0 ? 0 : 1)
