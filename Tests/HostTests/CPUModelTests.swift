import CKVM
import Testing
@testable import VeneerHost

struct CPUModelTests {
    func entry(_ leaf: UInt32, _ subleaf: UInt32 = 0, indexed: Bool = false,
               eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) -> kvm_cpuid_entry2 {
        var e = kvm_cpuid_entry2()
        e.function = leaf
        e.index = subleaf
        e.flags = indexed ? UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX) : 0
        e.eax = eax; e.ebx = ebx; e.ecx = ecx; e.edx = edx
        return e
    }

    /// A host with every bit set in the leaves the feature table covers.
    var fullHost: [kvm_cpuid_entry2] {
        [entry(1, ecx: .max, edx: .max), entry(7, 0, indexed: true, ebx: .max, ecx: .max, edx: .max),
         entry(7, 1, indexed: true, eax: .max), entry(0xD, 1, indexed: true, eax: .max),
         entry(0x8000_0001, ecx: .max, edx: .max), entry(0x8000_0007, edx: .max)]
    }

    @Test func featureNamesAndBitsAreUnique() {
        #expect(Set(CPUFeature.all.map(\.name)).count == CPUFeature.all.count)
        let places = CPUFeature.all.map { "\($0.leaf).\($0.subleaf).\($0.register).\($0.bit)" }
        #expect(Set(places).count == places.count)
        #expect(CPUFeature.all.allSatisfy { $0.bit < 32 })
    }

    @Test func hostTemplateHidesNothing() {
        let model = CPUModel()
        #expect(model.hiddenFeatures.isEmpty)
        let out = model.apply(to: fullHost)
        #expect(zip(out, fullHost).allSatisfy { $0.eax == $1.eax && $0.ebx == $1.ebx && $0.ecx == $1.ecx && $0.edx == $1.edx })
    }

    @Test func disabledFeaturesAreClearedAndNothingElse() throws {
        let avx = try #require(CPUFeature.named("avx"))
        let avx2 = try #require(CPUFeature.named("avx2"))
        let out = CPUModel(disabled: [avx, avx2]).apply(to: fullHost)
        #expect(out[0].ecx == ~(UInt32(1) << 28))
        #expect(out[0].edx == .max)
        #expect(out[1].ebx == ~(UInt32(1) << 5), "leaf 7 subleaf 0")
        #expect(out[2].eax == .max, "leaf 7 subleaf 1 is another subleaf")
        #expect(!CPUModel.isSet(avx, in: out) && !CPUModel.isSet(avx2, in: out))
    }

    /// The psABI levels nest, and each keeps what it promises: v2 has popcnt, v3 has avx2.
    @Test func templatesFollowTheMicroArchitectureLevels() throws {
        let levels: [CPUTemplate] = [.x86_64_v1, .x86_64_v2, .x86_64_v3, .x86_64_v4]
        for (lower, higher) in zip(levels, levels.dropFirst()) {
            #expect(Set(higher.hiddenFeatures).isSubset(of: Set(lower.hiddenFeatures)), "\(higher) hides no more than \(lower)")
        }
        let v2 = CPUModel(template: .x86_64_v2).apply(to: fullHost)
        #expect(CPUModel.isSet(try #require(CPUFeature.named("popcnt")), in: v2))
        #expect(!CPUModel.isSet(try #require(CPUFeature.named("avx")), in: v2))
        #expect(CPUModel.isSet(try #require(CPUFeature.named("x2apic")), in: v2), "platform features stay")
        let v3 = CPUModel(template: .x86_64_v3).apply(to: fullHost)
        #expect(CPUModel.isSet(try #require(CPUFeature.named("avx2")), in: v3))
        #expect(!CPUModel.isSet(try #require(CPUFeature.named("avx512f")), in: v3))
    }

    @Test func hiddenFeaturesAreListedOnce() throws {
        let avx = try #require(CPUFeature.named("avx"))
        let model = CPUModel(template: .x86_64_v2, disabled: [avx])
        #expect(model.hiddenFeatures.filter { $0 == avx }.count == 1)
    }

    func parse(_ cpu: String) throws(ConfigError) -> VMConfig {
        try ConfigParser.parse("""
            [boot]
            format = "flat"
            image = "guest.bin"
            [cpu]
            \(cpu)
            """, file: "/cfg/vm.toml")
    }

    @Test func cpuSectionParses() throws {
        let c = try parse("template = \"x86-64-v3\"\ndisable = [\"rdrand\", \"x2apic\"]")
        #expect(c.cpu.template == .x86_64_v3)
        #expect(c.cpu.disabled.map(\.name) == ["rdrand", "x2apic"])
        #expect(try ConfigParser.parse("[boot]\nformat = \"flat\"\nimage = \"g.bin\"", file: "/v.toml").cpu == CPUModel())
    }

    @Test(arguments: [
        ("template = \"pentium\"", "cpu.template", "'pentium' is not one of host, x86-64-v1"),
        ("disable = [\"avx\", \"warp-drive\"]", "cpu.disable[1]", "'warp-drive' is not a CPU feature"),
        ("disable = [\"avx\", \"avx\"]", "cpu.disable[1]", "listed twice"),
        ("disable = \"avx\"", "cpu.disable", "expected an array of strings"),
        ("disable = [1]", "cpu.disable[0]", "expected a string"),
        ("masks = 3", "cpu.masks", "unknown key"),
    ])
    func cpuSectionErrorsNameTheKey(_ text: String, _ key: String, _ reason: String) {
        do {
            _ = try parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.key == key)
            #expect(error.reason.contains(reason), "\(error.reason)")
        }
    }
}
