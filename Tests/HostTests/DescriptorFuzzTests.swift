import Foundation
import Testing
import VeneerHarness
import VeneerPluginABI
@testable import VeneerHost

// Seeded mutation fuzzing of the descriptor reader: a valid descriptor with six parameters (the
// last a group of two members, whose table follows the descriptor's) and its strings sits in real memory that ends at an inaccessible page, with real pointers between
// its parts; each input copies it afresh and then flips bits, writes boundary values over sizes,
// counts and pointers, or breaks strings, and feeds the result to `DescriptorReader.read`. It must
// never crash, and what it accepts must satisfy the rules it enforces.
//
// The default run is short; VENEER_DESCRIPTOR_FUZZ_INPUTS=1000000 runs a long one, and
// VENEER_DESCRIPTOR_FUZZ_SEED picks the seed (both printed at the end, to replay a run).

private let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
/// Where the parts of the image start (the descriptor at 0).
private let specsOffset = 512
private let membersOffset = specsOffset + 6 * MemoryLayout<veneer_param_spec>.size
private let stringsOffset = 1280
private let imageSize = 2048

/// The valid image, written into `base` (its pointers point into `base`).
private func writeTemplate(at base: UnsafeMutableRawPointer) {
    memset(base, 0, imageSize)
    var strings: [String: UnsafePointer<CChar>] = [:]
    var cursor = stringsOffset
    for s in ["fuzzed", "1.0", "a fuzzed descriptor", "flag", "a boolean", "true", "count", "an integer", "0x10",
              "mode", "a choice", "fast,slow", "slow", "width", "an enumerated integer", "1,2,4", "2",
              "log", "a path", "none,stdout", "none", "disk", "a group", "lun", "a unit", "read_only", "a flag", "false"] {
        let bytes = Array(s.utf8) + [0]
        (base + cursor).copyMemory(from: bytes, byteCount: bytes.count)
        strings[s] = UnsafePointer((base + cursor).assumingMemoryBound(to: CChar.self))
        cursor += bytes.count
    }
    func spec(_ type: UInt32, _ name: String, _ doc: String, _ def: String, min: Int64 = 0, max: Int64 = 0, choices: String? = nil) -> veneer_param_spec {
        var s = veneer_param_spec()
        s.struct_size = UInt32(MemoryLayout<veneer_param_spec>.size)
        s.type = type
        s.name = strings[name]
        s.doc = strings[doc]
        s.default_value = strings[def]
        s.min = min
        s.max = max
        s.choices = choices.flatMap { strings[$0] }
        return s
    }
    let specs = [
        spec(VENEER_PARAM_BOOL.rawValue, "flag", "a boolean", "true"),
        spec(VENEER_PARAM_INT.rawValue, "count", "an integer", "0x10", min: 0, max: 255),
        spec(VENEER_PARAM_CHOICE.rawValue, "mode", "a choice", "slow", choices: "fast,slow"),
        // ABI 1.6: an integer with `choices`, and a path with its words.
        spec(VENEER_PARAM_INT.rawValue, "width", "an enumerated integer", "2", min: 1, max: 4, choices: "1,2,4"),
        spec(VENEER_PARAM_PATH.rawValue, "log", "a path", "none", choices: "none,stdout"),
    ]
    // ABI 1.7: a group of 0 to 4 tables of two members.
    var group = spec(VENEER_PARAM_GROUP.rawValue, "disk", "a group", "", min: 0, max: 4)
    group.default_value = nil
    group.members = UnsafePointer((base + membersOffset).assumingMemoryBound(to: veneer_param_spec.self))
    group.member_count = 2
    var lun = spec(VENEER_PARAM_INT.rawValue, "lun", "a unit", "", min: 0, max: 63)
    lun.default_value = nil
    let members = [lun, spec(VENEER_PARAM_BOOL.rawValue, "read_only", "a flag", "false")]
    (specs + [group]).withUnsafeBytes { (base + specsOffset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    members.withUnsafeBytes { (base + membersOffset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    var d = veneer_plugin_descriptor()
    d.struct_size = UInt32(MemoryLayout<veneer_plugin_descriptor>.size)
    d.abi_major = UInt16(VENEER_ABI_MAJOR)
    d.abi_minor = UInt16(VENEER_ABI_MINOR)
    d.name = strings["fuzzed"]
    d.version = strings["1.0"]
    d.summary = strings["a fuzzed descriptor"]
    d.kind = VENEER_KIND_EMULATED.rawValue
    d.param_count = UInt32(specs.count + 1)
    d.param_spec_size = UInt32(MemoryLayout<veneer_param_spec>.size)
    d.params = UnsafePointer((base + specsOffset).assumingMemoryBound(to: veneer_param_spec.self))
    // Real code the reader can find in a loaded object; never called.
    d.create = { _, _, _ in nil }
    d.destroy = { _ in }
    d.io = { _, _, _, _, _, _ in }
    withUnsafeBytes(of: d) { base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
}

private struct Mutator {
    var rng: SplitMix64
    let base: UnsafeMutableRawPointer
    let end: UInt  // first inaccessible byte

    mutating func below(_ n: Int) -> Int { Int(rng.below(UInt64(n))) }

    /// Values that sit on the limits the reader checks, and pointers into, around and out of the image.
    mutating func boundary() -> UInt64 {
        let b = UInt(bitPattern: base)
        return [0, 1, 7, 8, 55, 56, 57, 64, 88, 96, 152, 255, 256, 257, 368, 4096, 0x7fff_ffff, 0xffff_ffff, 1 << 20,
                UInt64(b) + UInt64(below(imageSize)), UInt64(end) - UInt64(below(16)), UInt64(end) + UInt64(below(64)),
                0x10, UInt64.max, rng.next(), UInt64(b) + UInt64(specsOffset), UInt64(b) + UInt64(stringsOffset)][below(26)]
    }

    mutating func mutate() {
        let image = base.assumingMemoryBound(to: UInt8.self)
        for _ in 0...below(6) {
            switch below(6) {
            case 0:  // a bit anywhere
                image[below(imageSize)] ^= UInt8(1 << below(8))
            case 1:  // a boundary value over an aligned word (sizes, counts, pointers)
                let offset = below(stringsOffset / 8) * 8
                (base + offset).storeBytes(of: boundary(), as: UInt64.self)
            case 2:  // the same, 32 bits wide (struct_size, param_count, param_spec_size, type)
                let offset = below(stringsOffset / 4) * 4
                (base + offset).storeBytes(of: UInt32(truncatingIfNeeded: boundary()), as: UInt32.self)
            case 3:  // a string byte: NUL, control, non-UTF-8, printable
                image[stringsOffset + below(imageSize - stringsOffset)] = [0, 0x0a, 0xff, 0xc3, 0x41, 0x2c][below(6)]
            case 4:  // a long run without NUL up to the guard page
                let start = stringsOffset + below(imageSize - stringsOffset)
                memset(base + start, 0x61, imageSize - start)
            default:  // random bytes over a stretch of the descriptor or the specs
                let start = below(stringsOffset)
                for i in start..<min(stringsOffset, start + below(32)) { image[i] = UInt8(truncatingIfNeeded: rng.next()) }
            }
        }
    }
}

struct DescriptorFuzzTests {
    @Test func theTemplateIsAccepted() throws {
        try withImage { base, _ in
            writeTemplate(at: base)
            let (_, info) = try DescriptorReader.read(at: UInt(bitPattern: base), path: "template")
            #expect(info.name == "fuzzed")
            #expect(info.parameters.map(\.name) == ["flag", "count", "mode", "width", "log", "disk"])
            #expect(info.parameters[2].kind == .choice(["fast", "slow"]))
            #expect(info.parameters[3].kind == .intChoice([1, 2, 4]))
            #expect(info.parameters[4].kind == .path(words: ["none", "stdout"]))
            #expect(info.parameters[5].kind == .group(min: 0, max: 4, members: [
                ParameterSchema(name: "lun", doc: "a unit", kind: .int(min: 0, max: 63), defaultText: nil),
                ParameterSchema(name: "read_only", doc: "a flag", kind: .bool, defaultText: "false"),
            ]))
        }
    }

    /// Before ABI 1.6 the path type is unknown (refused, naming the field) and an integer's
    /// `choices` are not read; from 1.6 on, types past 5 are still refused.
    @Test(arguments: 0...5)
    func pathsAndIntegerChoicesNeedABI16(minor: Int) throws {
        let minorOffset = 6  // struct_size (4), abi_major (2), abi_minor (2)
        try withImage { base, _ in
            writeTemplate(at: base)
            (base + minorOffset).storeBytes(of: UInt16(minor), as: UInt16.self)
            let error = #expect(throws: PluginLoadError.self) { try DescriptorReader.read(at: UInt(bitPattern: base), path: "old") }
            #expect(error == .invalidField(path: "old", field: "params[4].type",
                                           problem: "5 is not 1 (bool), 2 (int), 3 (string) or 4 (choice); 5 (path) needs ABI 1.6, 6 (group) ABI 1.7"))
            // Without the path parameter it loads, and `width` is a plain range.
            let countOffset = MemoryLayout<veneer_plugin_descriptor>.offset(of: \.param_count) ?? 0
            (base + countOffset).storeBytes(of: UInt32(4), as: UInt32.self)
            let (_, info) = try DescriptorReader.read(at: UInt(bitPattern: base), path: "old")
            #expect(info.parameters[3].kind == .int(min: 1, max: 4))
        }
    }

    @Test func anUnknownTypeIsRefusedAtTheCurrentMinor() throws {
        try withImage { base, _ in
            writeTemplate(at: base)
            let typeOffset = specsOffset + 4 * MemoryLayout<veneer_param_spec>.size + 4
            (base + typeOffset).storeBytes(of: UInt32(7), as: UInt32.self)
            let error = #expect(throws: PluginLoadError.self) { try DescriptorReader.read(at: UInt(bitPattern: base), path: "new") }
            #expect(error == .invalidField(path: "new", field: "params[4].type",
                                           problem: "7 is not 1 (bool), 2 (int), 3 (string), 4 (choice), 5 (path) or 6 (group)"))
        }
    }

    @Test func mutatedDescriptorsAreRefusedOrConsistentNeverACrash() throws {
        let environment = ProcessInfo.processInfo.environment
        let inputs = environment["VENEER_DESCRIPTOR_FUZZ_INPUTS"].flatMap { Int($0) } ?? 5_000
        let seed = environment["VENEER_DESCRIPTOR_FUZZ_SEED"].flatMap { UInt64($0, radix: 16) } ?? 0xde5c_0001
        var accepted = 0, refusedFields: [String: Int] = [:]
        try withImage { base, end in
            var mutator = Mutator(rng: SplitMix64(seed: seed), base: base, end: end)
            for _ in 0..<inputs {
                writeTemplate(at: base)
                mutator.mutate()
                do {
                    let (fields, info) = try DescriptorReader.read(at: UInt(bitPattern: base), path: "fuzz")
                    accepted += 1
                    #expect(PluginLibrary.isValidPluginName(info.name))
                    #expect(info.summary.utf8.count <= DescriptorReader.maxSummaryBytes)
                    #expect(fields.create != nil && fields.destroy != nil)
                    #expect(info.parameters.count == Int(fields.param_count) && info.parameters.count <= DescriptorReader.maxParameters)
                    for p in info.parameters {
                        #expect(PluginLibrary.isValidParameterName(p.name))
                        switch p.kind {
                        case .int(let lo, let hi): #expect(lo <= hi)
                        case .intChoice(let values):
                            #expect(info.abiMinor >= 6 && !values.isEmpty && Set(values).count == values.count)
                        case .path(let words):
                            #expect(info.abiMinor >= 6 && !words.contains("") && Set(words).count == words.count)
                        case .group(let lo, let hi, let members):
                            #expect(info.abiMinor >= 7 && lo >= 0 && lo <= hi && hi <= DescriptorReader.maxGroupTables)
                            #expect(p.defaultText == nil && (1...DescriptorReader.maxGroupMembers).contains(members.count))
                            #expect(Set(members.map(\.name)).count == members.count)
                            for m in members {
                                #expect(PluginLibrary.isValidParameterName(m.name))
                                if case .group = m.kind { Issue.record("a nested group was accepted") }
                            }
                        default: break
                        }
                    }
                } catch let error as PluginLoadError {
                    switch error {
                    case .invalidField(_, let field, _):
                        refusedFields[field.replacing(/\[\d+\]/, with: "[i]"), default: 0] += 1
                    case .abiMismatch, .malformed:
                        refusedFields["(abi or entry)", default: 0] += 1
                    default:
                        Issue.record("unexpected refusal \(error)")
                    }
                } catch {
                    Issue.record("unexpected error \(error)")
                }
            }
        }
        #expect(accepted > 0, "the mutations never leave a valid descriptor: the fuzzer only tests refusals")
        let top = refusedFields.sorted { $0.value > $1.value }.prefix(8).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print("descriptor fuzz: \(inputs) inputs, seed 0x\(String(seed, radix: 16)): \(accepted) accepted, "
              + "\(inputs - accepted) refused (\(top))")
    }

    /// Runs `body` with a page-aligned image buffer followed by an inaccessible page.
    func withImage(_ body: (UnsafeMutableRawPointer, UInt) throws -> Void) throws {
        let span = (imageSize + pageSize - 1) / pageSize * pageSize
        guard let mapping = mmap(nil, span + pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapping != MAP_FAILED
        else { throw CocoaError(.featureUnsupported) }
        defer { munmap(mapping, span + pageSize) }
        guard mprotect(mapping + span, pageSize, PROT_NONE) == 0 else { throw CocoaError(.featureUnsupported) }
        // The image ends flush against the guard page.
        try body(mapping + span - imageSize, UInt(bitPattern: mapping + span))
    }
}
