import Foundation
import Testing
import VeneerHost

/// Issue 7's durability proof: the storvsc guest's durability mode (examples/guests/storvsc/
/// durability.c) writes numbered 4 KiB records through storvsp over all four channels, some with
/// FUA and some followed by SYNCHRONIZE CACHE, and prints "durable N" once records 1..N are all
/// durable. Each trial SIGKILLs `veneer run` at a random moment (seeded, so a failing trial can be
/// replayed) and then checks on the host that every record up to the last "durable N" printed is
/// on the disk intact. Trials alternate raw and dynamic VHDX (1 MiB blocks, so many BAT updates
/// are in flight) and cache modes none and writeback. A VHDX is reopened writable by Veneer
/// (`veneer disk check --repair`, which replays its log), must then pass `qemu-img check`, and is
/// read through `qemu-img convert`.
///
/// Environment: VENEER_DURABILITY_TRIALS (default 100, all formats and modes together),
/// VENEER_DURABILITY_SEED (default 7), VENEER_DURABILITY_MAX_DELAY_MS (the latest kill after the
/// guest starts writing, default 1500).
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct StorageDurabilityTests {
    // The guest's record layout (durability.c).
    static let recordBytes = 4096
    static let regionOffset = 1 << 20
    static let regionRecords = 4096
    static let magic: UInt64 = 0x4452_5245_5645_4E56
    static let diskMiB = 20

    /// Why record `n`'s slot in `disk` does not hold record n or a later record of the same slot,
    /// intact; nil when it does.
    static func recordProblem(_ disk: Data, n: Int) -> String? {
        let offset = regionOffset + ((n - 1) % regionRecords) * recordBytes
        guard offset + recordBytes <= disk.count else { return "record \(n): slot at \(offset) is past the disk's end" }
        return disk.withUnsafeBytes { raw -> String? in
            var w = [UInt64](repeating: 0, count: recordBytes / 8)
            for i in 0..<w.count {
                w[i] = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset + i * 8, as: UInt64.self))
            }
            guard w[0] == magic else { return "record \(n): no record at byte \(offset) (first word 0x\(String(w[0], radix: 16)))" }
            let seq = w[1]
            guard seq >= UInt64(n), (seq - UInt64(n)) % UInt64(regionRecords) == 0 else {
                return "record \(n): its slot holds record \(seq)"
            }
            var sum: UInt64 = 0
            for i in 3..<w.count {
                let want = (seq &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(i) &* 0xBF58_476D_1CE4_E5B9)
                guard w[i] == want else { return "record \(seq) (for \(n)): word \(i) is 0x\(String(w[i], radix: 16)), want 0x\(String(want, radix: 16))" }
                sum = sum &+ w[i] &* (2 * UInt64(i) + 1)
            }
            return sum == w[2] ? nil : "record \(seq): checksum 0x\(String(w[2], radix: 16)), want 0x\(String(sum, radix: 16))"
        }
    }

    /// The last complete "durable N" line of the guest's output (0 if none).
    static func lastDurable(_ output: String) -> Int {
        var last = 0
        // The console ends lines with CR LF; the last piece may be a line the kill cut short.
        let text = output.replacingOccurrences(of: "\r", with: "")
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() where line.hasPrefix("durable ") {
            if let n = Int(line.dropFirst("durable ".count)) { last = n }
        }
        return last
    }

    /// splitmix64: the trials' kill moments, reproducible from the seed.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func environmentInt(_ name: String, _ fallback: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) } ?? fallback
    }

    struct Trial {
        var index: Int
        var format: String      // "raw" or "vhdx"
        var cache: String       // "none" or "writeback"
        var delayMicros: UInt32
    }

    /// Runs the VM until the guest writes, waits the trial's delay, SIGKILLs it; returns its output.
    static func runAndKill(config: String, trial: Trial, dir: String) throws -> String {
        let outPath = dir + "/out-\(trial.index).txt"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        guard let out = FileHandle(forWritingAtPath: outPath) else { throw TestFailure("cannot open \(outPath)") }
        defer { try? out.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: VeneerProcess.executable)
        process.arguments = ["run", config]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        process.standardOutput = out
        process.standardError = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let read = { String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self) }
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && !read().contains("storvsc-durability: writing") && Date() < deadline {
            usleep(5_000)
        }
        if process.isRunning {
            usleep(trial.delayMicros)
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        let output = read()
        guard process.terminationReason == .uncaughtSignal, process.terminationStatus == SIGKILL else {
            throw TestFailure("trial \(trial.index): veneer ended by itself (status \(process.terminationStatus)) before the kill:\n\(output)")
        }
        return output
    }

    @Test func everyDurableRecordSurvivesSIGKILL() throws {
        try VeneerProcess.buildExamples()
        let trials = Self.environmentInt("VENEER_DURABILITY_TRIALS", 100)
        let seed = UInt64(Self.environmentInt("VENEER_DURABILITY_SEED", 7))
        let maxDelayMs = max(1, Self.environmentInt("VENEER_DURABILITY_MAX_DELAY_MS", 1500))
        let qemuImg = StorageGuestTests.which("qemu-img")
        if qemuImg == nil { print("SKIPPED: qemu-img is not installed: only raw disks are tried") }
        let image = VeneerProcess.repoRoot + "/examples/guests/build/storvsc-durability.bin"
        try #require(FileManager.default.fileExists(atPath: image), "\(image) was not built")

        var random = Random(state: seed)
        var lost = 0, checked = 0
        var tally: [String: Int] = [:]
        for index in 0..<trials {
            let format = (qemuImg == nil || index % 2 == 0) ? "raw" : "vhdx"
            let cache = (index / 2) % 2 == 0 ? "none" : "writeback"
            let trial = Trial(index: index, format: format, cache: cache,
                              delayMicros: UInt32(random.next() % UInt64(maxDelayMs * 1000)))
            let scratch = try BootTestSupport.Scratch()
            let dir = scratch.path
            let disk = dir + "/disk.\(format)"
            var create = ["disk", "create", disk, "--format", format, "--size", "\(Self.diskMiB)M"]
            if format == "vhdx" {
                create += ["--type", "dynamic", "--block-size", "1M", "--logical-sector", "512", "--physical-sector", "4096"]
            }
            let made = try VeneerProcess.veneer(create)
            try #require(made.status == 0, "veneer \(create.joined(separator: " ")): \(made.stderr)")
            let config = """
                name = "durability"
                memory = "64M"
                vcpus = 4
                hyperv = true

                [boot]
                format = "flat"
                image = "\(image)"
                mode = "long"
                load_address = 0x100000

                [[device]]
                id = "com1"
                plugin = "serial16550"

                [[device]]
                id = "scsi0"
                plugin = "storvsp"

                [[device.disk]]
                lun = 0
                path = "\(disk)"
                format = "\(format)"
                cache = "\(cache)"
                """
            try config.write(toFile: dir + "/vm.toml", atomically: true, encoding: .utf8)

            let output = try Self.runAndKill(config: dir + "/vm.toml", trial: trial, dir: dir)
            #expect(!output.contains("FAILED"), "trial \(index): \(output)")
            let durable = Self.lastDurable(output)
            if durable == 0 { print("durability trial \(index): nothing durable yet; the output ends: \(output.suffix(300))") }

            // The disk as a host sees it after the crash.
            var rawPath = disk
            if format == "vhdx", let qemuImg {
                let repair = try VeneerProcess.veneer(["disk", "check", disk, "--repair"])
                #expect(repair.status == 0, "trial \(index): veneer disk check --repair: \(repair.stdout)\(repair.stderr)")
                let check = try VeneerProcess.run(qemuImg, ["check", "-f", "vhdx", disk])
                #expect(check.status == 0, "trial \(index): qemu-img check after the crash: \(check.stdout)\(check.stderr)")
                rawPath = dir + "/converted.raw"
                let convert = try VeneerProcess.run(qemuImg, ["convert", "-f", "vhdx", "-O", "raw", disk, rawPath])
                try #require(convert.status == 0, "trial \(index): qemu-img convert: \(convert.stderr)")
            }
            let data = try Data(contentsOf: URL(fileURLWithPath: rawPath))
            // Records older than half a region may have been overwritten by design (the region wraps).
            let first = max(1, durable - Self.regionRecords / 2 + 1)
            var problems: [String] = []
            if durable >= first {
                for n in first...durable {
                    if let problem = Self.recordProblem(data, n: n) { problems.append(problem) }
                }
            }
            lost += problems.count
            checked += max(0, durable - first + 1)
            tally["\(format)/\(cache)", default: 0] += 1
            #expect(problems.isEmpty, """
                trial \(index) (\(format), cache \(cache), seed \(seed), kill \(trial.delayMicros) µs after writing began): \
                \(problems.count) of the records \(first)...\(durable) lost; first: \(problems.prefix(3).joined(separator: "; "))
                """)
            print("durability trial \(index): \(format) cache \(cache), killed \(trial.delayMicros / 1000) ms in, durable \(durable), records checked \(max(0, durable - first + 1)), lost \(problems.count)")
        }
        print("durability: \(trials) trials (\(tally.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))), \(checked) records checked, \(lost) lost")
        #expect(lost == 0)
    }
}
