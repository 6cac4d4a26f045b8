import VeneerHost

/// SplitMix64: a tiny generator whose whole state is the seed, so a seed names one exact run.
/// Only `next` and `below` are used, never the standard library's `random(in:using:)`, whose
/// algorithm may change between toolchains.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// A value in 0..<bound (bound > 0); the modulo bias is irrelevant for testing.
    public mutating func below(_ bound: UInt64) -> UInt64 { next() % max(bound, 1) }
}

/// The outcome of one conformance check.
public struct ConformanceCheck: Sendable, Equatable {
    public var name: String
    public var passed: Bool
    public var message: String

    public init(name: String, passed: Bool, message: String) {
        self.name = name
        self.passed = passed
        self.message = message
    }

    /// `PASS  load: serial16550 1.0.0 (ABI 1.0)`
    public var line: String { "\(passed ? "PASS" : "FAIL")  \(name): \(message)" }
}

public struct ConformanceReport: Sendable {
    /// The plugin as given (a name or a path).
    public var plugin: String
    public var checks: [ConformanceCheck]
    /// Why the plugin could not be loaded at all; `checks` then holds only that failure.
    public var loadError: PluginLoadError?

    public var passedCount: Int { checks.count(where: \.passed) }
    public var failedCount: Int { checks.count(where: { !$0.passed }) }
    public var allPassed: Bool { failedCount == 0 && !checks.isEmpty }
    public var summary: String { "\(passedCount) passed, \(failedCount) failed" }
}

/// A reusable conformance run on any plugin `.so`, through the same loader, parameter validation
/// and host-service table as `veneer run`:
///
///  1. load: the ABI checks accept it;
///  2. create: an instance comes up with the schema defaults (plus `parameters`);
///  3. reset is idempotent: the state saved after a reset equals that after a second one;
///  4. save -> load -> save is byte-identical;
///  5. load rejects truncated state (when there is state to truncate) and survives random garbage;
///  6. `accesses` seeded random reads and writes to every region, interleaved with clock steps and
///     posted work, never crash, and the state still round-trips afterwards.
///
/// Checks 3-6 each use a fresh instance, so one failure does not cascade into the next. `run()`
/// runs them all in this process, as the VMM runs plugins, so a crash in the plugin ends it;
/// `run(phase:)` runs one, for `veneer-plugin-test`, which gives each phase a process of its own.
public struct ConformanceSuite: Sendable {
    public static let defaultSeed: UInt64 = 0x5eed
    public static let defaultAccesses = 10_000

    public var plugin: String
    /// `key=value` overrides, values as typed on a command line (parsed against the schema).
    public var parameters: [String: String]
    public var seed: UInt64
    public var accesses: Int
    public var registry: PluginRegistry

    public init(
        plugin: String,
        parameters: [String: String] = [:],
        seed: UInt64 = defaultSeed,
        accesses: Int = defaultAccesses,
        registry: PluginRegistry = .standard()
    ) {
        self.plugin = plugin
        self.parameters = parameters
        self.seed = seed
        self.accesses = accesses
        self.registry = registry
    }

    /// The checks, in order; `id` is how `veneer-plugin-test --phase` names one.
    public enum Phase: String, CaseIterable, Sendable {
        case load, create, reset, roundTrip = "round-trip", badState = "bad-state", randomAccesses = "random-accesses"

        public var id: String { rawValue }

        /// The check's name in its PASS/FAIL line.
        public var checkName: String {
            switch self {
            case .load: "load"
            case .create: "create"
            case .reset: "reset idempotent"
            case .roundTrip: "save/load round trip"
            case .badState: "load rejects bad state"
            case .randomAccesses: "random accesses"
            }
        }
    }

    /// One phase alone, with the loading and creating it needs: its check, or why the plugin did
    /// not load (then the check is the failed load).
    public func run(phase: Phase) -> (check: ConformanceCheck, loadError: PluginLoadError?) {
        let library: PluginLibrary
        do {
            library = try PluginLibrary(path: try resolvedPath())
        } catch {
            return (ConformanceCheck(name: Phase.load.checkName, passed: false, message: error.description), error)
        }
        let info = library.info
        if phase == .load {
            return (ConformanceCheck(name: phase.checkName, passed: true, message: "\(info.name) \(info.version) (ABI \(info.abiVersion))"), nil)
        }
        let instance: PluginHarness
        do {
            let inputs = try Self.inputs(from: parameters, schema: info.parameters)
            instance = try PluginHarness(plugin: library.path, parameters: inputs, registry: registry)
        } catch {
            return (ConformanceCheck(name: Phase.create.checkName, passed: false, message: "\(error)"), nil)
        }
        let result: ConformanceCheck = switch phase {
        case .load, .create: ConformanceCheck(name: phase.checkName, passed: true, message: Self.describe(instance, parameters))
        case .reset: check(phase.checkName) { try resetIsIdempotent(instance) }
        case .roundTrip: check(phase.checkName) { try roundTrip(instance) }
        case .badState: check(phase.checkName) { try rejectsBadState(instance) }
        case .randomAccesses: check(phase.checkName) { try randomAccesses(instance) }
        }
        return (result, nil)
    }

    public func run() -> ConformanceReport {
        var report = ConformanceReport(plugin: plugin, checks: [])
        let library: PluginLibrary
        do {
            library = try PluginLibrary(path: try resolvedPath())
        } catch {
            report.loadError = error
            report.checks.append(ConformanceCheck(name: "load", passed: false, message: error.description))
            return report
        }
        let info = library.info
        report.checks.append(ConformanceCheck(
            name: "load", passed: true, message: "\(info.name) \(info.version) (ABI \(info.abiVersion))"))

        let inputs: [String: ParameterValidation.Input]
        let first: PluginHarness
        do {
            inputs = try Self.inputs(from: parameters, schema: info.parameters)
            first = try PluginHarness(plugin: library.path, parameters: inputs, registry: registry)
        } catch {
            report.checks.append(ConformanceCheck(name: "create", passed: false, message: "\(error)"))
            return report
        }
        report.checks.append(ConformanceCheck(name: "create", passed: true, message: Self.describe(first, parameters)))

        // Every later check gets its own instance (the first serves the reset check).
        var spare: PluginHarness? = first
        func instance() throws -> PluginHarness {
            if let h = spare { spare = nil; return h }
            return try PluginHarness(plugin: library.path, parameters: inputs, registry: registry)
        }
        report.checks.append(check("reset idempotent") { try resetIsIdempotent(try instance()) })
        report.checks.append(check("save/load round trip") { try roundTrip(try instance()) })
        report.checks.append(check("load rejects bad state") { try rejectsBadState(try instance()) })
        report.checks.append(check("random accesses") { try randomAccesses(try instance()) })
        return report
    }

    // MARK: the checks

    /// A failed check: its reason is the message.
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    private func check(_ name: String, _ body: () throws -> String) -> ConformanceCheck {
        do {
            return ConformanceCheck(name: name, passed: true, message: try body())
        } catch {
            return ConformanceCheck(name: name, passed: false, message: "\(error)")
        }
    }

    /// Disturbs the device first, so the first reset has something to undo.
    func resetIsIdempotent(_ h: PluginHarness) throws -> String {
        var rng = SplitMix64(seed: seed ^ 0x7265_7365_74)
        let burst = min(accesses, 256)
        _ = exercise(h, count: burst, rng: &rng)
        try h.reset()
        let once = try h.save()
        try h.reset()
        let twice = try h.save()
        if let difference = Self.difference(once, twice) {
            throw Failure("the state after two resets differs from that after one: \(difference)")
        }
        return "\(once.count)-byte state after a reset equals that after a second reset (after \(burst) random accesses)"
    }

    func roundTrip(_ h: PluginHarness) throws -> String {
        let saved = try h.save()
        try h.load(saved)
        let again = try h.save()
        if let difference = Self.difference(saved, again) { throw Failure("save after load differs: \(difference)") }
        return "\(saved.count)-byte state saves, loads and saves again identically"
    }

    func rejectsBadState(_ h: PluginHarness) throws -> String {
        let saved = try h.save()
        var notes: [String] = []
        if saved.isEmpty {
            notes.append("state is empty, no truncation to check")
        } else {
            let lengths = Set([0, saved.count / 2, saved.count - 1]).sorted()
            for length in lengths {
                if (try? h.load(Array(saved.prefix(length)))) != nil {
                    throw Failure("load accepted the \(saved.count)-byte state truncated to \(length) bytes")
                }
            }
            notes.append("rejects \(lengths.count) truncations")
        }
        // Garbage may happen to be valid state; what matters is that it does not crash the plugin
        // and that whatever it accepted still saves and round-trips.
        var rng = SplitMix64(seed: seed ^ 0x6761_7262_6167_65)
        let blobs = 64
        var accepted = 0
        for i in 0..<blobs {
            let length = i % 4 == 0 && !saved.isEmpty ? saved.count : Int(rng.below(UInt64(max(4 * saved.count, 256))))
            let garbage = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            guard (try? h.load(garbage)) != nil else { continue }
            accepted += 1
            do { _ = try roundTrip(h) } catch {
                throw Failure("after accepting a \(length)-byte random blob: \(error)")
            }
        }
        notes.append("\(blobs - accepted) of \(blobs) random blobs rejected\(accepted > 0 ? ", the rest round-trip" : "")")
        return notes.joined(separator: "; ")
    }

    func randomAccesses(_ h: PluginHarness) throws -> String {
        var rng = SplitMix64(seed: seed)
        let stats = exercise(h, count: accesses, rng: &rng)
        let regions = stats.regions
        let saved: [UInt8]
        do {
            saved = try h.save()
            try h.load(saved)
        } catch {
            throw Failure("after \(stats.reads + stats.writes) accesses: \(error)")
        }
        let again = try h.save()
        if let difference = Self.difference(saved, again) {
            throw Failure("after \(stats.reads + stats.writes) accesses, save after load differs: \(difference)")
        }
        let config = stats.configAccesses > 0 ? ", \(stats.configAccesses) PCI configuration accesses" : ""
        return "\(stats.reads) reads and \(stats.writes) writes to \(regions) region\(regions == 1 ? "" : "s")\(config), "
            + "\(stats.steps) clock steps (seed \(hex(seed))); state round-trips (\(saved.count) bytes)"
    }

    /// Random accesses at random offsets of random registered regions; sizes 1/2/4, and 8 for MMIO.
    /// Regions are looked up afresh each time, as a device may move them. A device with PCI
    /// functions also gets random configuration reads and writes (a quarter of the accesses, half
    /// of them to the header), which move and enable its BARs at random: they then join the
    /// regions.
    func exercise(_ h: PluginHarness, count: Int, rng: inout SplitMix64)
        -> (reads: Int, writes: Int, regions: Int, configAccesses: Int, steps: Int)
    {
        var reads = 0, writes = 0, configAccesses = 0, steps = 0
        var touched = Set<UInt32>()
        for _ in 0..<count {
            let regions = h.host.regions
            let functions = h.host.pciFunctions
            if !functions.isEmpty, regions.isEmpty || rng.below(4) == 0 {
                let function = functions[Int(rng.below(UInt64(functions.count)))]
                let size = UInt32(1) << UInt32(rng.below(3))
                let span: UInt64 = rng.next() & 1 == 0 ? 0x40 : 0x100
                let offset = UInt32(rng.below(span)) & ~(size - 1)
                if rng.next() & 1 == 0 {
                    _ = h.pciConfigRead(offset, size: size, function: function)
                } else {
                    h.pciConfigWrite(offset, UInt32(truncatingIfNeeded: rng.next()), size: size, function: function)
                }
                configAccesses += 1
            } else {
                guard !regions.isEmpty else { break }
                let region = regions[Int(rng.below(UInt64(regions.count)))]
                touched.insert(region.id)
                let mmio = region.kind == .mmio
                var size = 1 << Int(rng.below(mmio ? 4 : 3))
                while UInt64(size) > region.length { size /= 2 }
                let offset = rng.below(region.length - UInt64(size) + 1)
                if rng.next() & 1 == 0 {
                    h.access(region: region.id, offset: offset, size: size, write: nil, mmio: mmio)
                    reads += 1
                } else {
                    let mask: UInt64 = size == 8 ? .max : (1 << UInt64(size * 8)) - 1
                    h.access(region: region.id, offset: offset, size: size, write: rng.next() & mask, mmio: mmio)
                    writes += 1
                }
            }
            if rng.below(16) == 0 {
                // Log-uniform steps up to ~16 ms reach both fine-grained and slow timers.
                h.advance(nanoseconds: rng.below(1 << (1 + rng.below(24))))
                h.runPostedWork()
                steps += 1
            }
        }
        return (reads, writes, touched.count, configAccesses, steps)
    }

    // MARK: helpers

    /// A name is looked up in the registry; anything with a slash or ending in `.so` is a file
    /// (given a `./` so that dlopen does not search the library path for it).
    func resolvedPath() throws(PluginLoadError) -> String {
        if plugin.contains("/") { return plugin }
        if plugin.hasSuffix(".so") { return "./" + plugin }
        return try registry.locate(plugin)
    }

    /// Typed inputs from textual overrides. Unknown keys pass through as strings so that
    /// `ParameterValidation.resolve` reports them in its usual words. A group's members are
    /// given per table, `disk[0].lun=3`; tables run from 0 to the highest index given.
    static func inputs(from text: [String: String], schema: [ParameterSchema]) throws(ParameterValidation.Problem)
        -> [String: ParameterValidation.Input]
    {
        var inputs: [String: ParameterValidation.Input] = [:]
        var tables: [String: [Int: [String: ParameterValidation.Input]]] = [:]
        for (key, value) in text {
            if let (group, index, member) = groupKey(key) {
                guard case .group(_, let max, let members)? = schema.first(where: { $0.name == group })?.kind else {
                    throw ParameterValidation.Problem(key: key, reason: "'\(group)' is not a parameter group of this plugin")
                }
                guard index < max else { throw ParameterValidation.Problem(key: key, reason: "table \(index) is past the group's \(max) tables") }
                tables[group, default: [:]][index, default: [:]][member] = try input(value, members.first { $0.name == member })
                continue
            }
            inputs[key] = try input(value, schema.first { $0.name == key })
        }
        for (group, byIndex) in tables {
            let count = (byIndex.keys.max() ?? -1) + 1
            inputs[group] = .group((0..<count).map { byIndex[$0] ?? [:] })
        }
        return inputs
    }

    /// `disk[2].lun` as (disk, 2, lun); nil for any other key.
    private static func groupKey(_ key: String) -> (String, Int, String)? {
        guard let open = key.firstIndex(of: "["), let close = key.firstIndex(of: "]"), open < close,
              key[key.index(after: close)...].hasPrefix("."),
              let index = Int(key[key.index(after: open)..<close]), index >= 0
        else { return nil }
        return (String(key[..<open]), index, String(key[key.index(close, offsetBy: 2)...]))
    }

    private static func input(_ value: String, _ spec: ParameterSchema?) throws(ParameterValidation.Problem) -> ParameterValidation.Input {
        guard let spec else { return .string(value) }
        return switch try ParameterValidation.parse(text: value, for: spec) {
        case .bool(let b): .bool(b)
        case .int(let i): .int(i)
        case .string(let s): .string(s)
        case .group: .group([])  // parse refuses groups: a group has no textual value
        }
    }

    static func describe(_ h: PluginHarness, _ parameters: [String: String]) -> String {
        let with = parameters.isEmpty
            ? "schema defaults"
            : "defaults and " + parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let regions = h.host.regions.map { "\($0.kind == .mmio ? "MMIO" : "PIO") \(hex($0.base))+\(hex($0.length))" }
        return "instance created with \(with); regions: \(regions.isEmpty ? "none" : regions.joined(separator: ", "))"
    }

    /// Where two states first differ, or nil if they are equal.
    static func difference(_ a: [UInt8], _ b: [UInt8]) -> String? {
        guard a != b else { return nil }
        guard a.count == b.count else { return "\(a.count) bytes, then \(b.count)" }
        guard let i = a.indices.first(where: { a[$0] != b[$0] }) else { return nil }
        return "byte \(i) of \(a.count) is \(hex(a[i])), then \(hex(b[i]))"
    }
}

func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
