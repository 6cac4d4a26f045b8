import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// Finds out which of a CPU model's hidden features really disappear from a guest's view on this
/// host. KVM accepts any table through KVM_SET_CPUID2, but a host whose KVM does not intercept
/// CPUID for every leaf (a software KVM such as PVM shows the guest the real CPU for most leaves)
/// leaves some bits visible. The probe asks the only authority there is: a one-vCPU guest that
/// executes CPUID on each leaf involved and stores what it saw.
///
/// Unsafe-pointer invariants: `memory` is an anonymous private mapping of `memorySize` bytes that
/// lives until the function returns, after the vCPU has stopped running; the probe code and its
/// results lie inside it at fixed offsets checked against `memorySize`.
public enum CPUIDProbe {
    public struct Report: Sendable, Equatable {
        /// Hidden features the host has and the guest no longer sees.
        public var honoured: [CPUFeature]
        /// Hidden features the guest still sees: the host does not apply the mask.
        public var ignored: [CPUFeature]
        /// Hidden features the guest would not see anyway: not in KVM's table, not shown by the CPU.
        public var absentOnHost: [CPUFeature]
    }

    public enum Failure: Error, CustomStringConvertible {
        case kvm(KVMError)
        case memory(String)
        case guest(String)

        public var description: String {
            switch self {
            case .kvm(let e): "CPUID probe: \(e)"
            case .memory(let m): "CPUID probe: \(m)"
            case .guest(let m): "CPUID probe guest: \(m)"
            }
        }
    }

    static let memorySize = 1 << 20
    static let codeAddress = 0x1000
    static let resultsAddress = 0x8000
    /// Each (leaf, subleaf) costs 36 bytes of code and 16 of results; 64 leaves fit easily.
    static let maxLeaves = 64

    public static func run(_ model: CPUModel) throws(Failure) -> Report {
        let hidden = model.hiddenFeatures
        guard !hidden.isEmpty else { return Report(honoured: [], ignored: [], absentOnHost: []) }
        do {
            let kvm = try KVMSystem()
            let supported = try kvm.supportedCPUID()
            var leaves: [(leaf: UInt32, subleaf: UInt32)] = []
            for f in hidden where !leaves.contains(where: { $0.leaf == f.leaf && $0.subleaf == f.subleaf }) {
                leaves.append((f.leaf, f.subleaf))
            }
            let seen = try execute(leaves: Array(leaves.prefix(maxLeaves)), cpuid: model.apply(to: supported), kvm: kvm)
            var report = Report(honoured: [], ignored: [], absentOnHost: [])
            // What the guest sees decides: a software KVM may show bits its own supported table
            // leaves out (the real CPU's), and those are not hidden either.
            for f in hidden {
                if CPUModel.isSet(f, in: seen) {
                    report.ignored.append(f)
                } else if CPUModel.isSet(f, in: supported) {
                    report.honoured.append(f)
                } else {
                    report.absentOnHost.append(f)
                }
            }
            return report
        } catch let error as Failure {
            throw error
        } catch let error as KVMError {
            throw .kvm(error)
        } catch {
            throw .guest("\(error)")
        }
    }

    /// Runs CPUID for each leaf in a real-mode guest given `cpuid`; returns what it saw as entries.
    private static func execute(leaves: [(leaf: UInt32, subleaf: UInt32)], cpuid: [kvm_cpuid_entry2],
                                kvm: KVMSystem) throws -> [kvm_cpuid_entry2] {
        var code: [UInt8] = []
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        for (i, l) in leaves.enumerated() {
            let slot = resultsAddress + 16 * i
            code += [0x66, 0xB8] + le32(l.leaf)                 // mov eax, leaf
            code += [0x66, 0xB9] + le32(l.subleaf)              // mov ecx, subleaf
            code += [0x0F, 0xA2]                                // cpuid
            code += [0x66, 0xA3] + le16(slot)                   // mov [slot], eax
            code += [0x66, 0x89, 0x1E] + le16(slot + 4)         // mov [slot + 4], ebx
            code += [0x66, 0x89, 0x0E] + le16(slot + 8)         // mov [slot + 8], ecx
            code += [0x66, 0x89, 0x16] + le16(slot + 12)        // mov [slot + 12], edx
        }
        code.append(0xF4)                                       // hlt
        guard codeAddress + code.count <= resultsAddress, resultsAddress + 16 * leaves.count <= memorySize else {
            throw Failure.memory("\(leaves.count) leaves do not fit the probe's memory")
        }

        guard let memory = mmap(nil, memorySize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              memory != MAP_FAILED else { throw Failure.memory("mmap: \(SystemError("mmap"))") }
        defer { munmap(memory, memorySize) }
        (memory + codeAddress).copyMemory(from: code, byteCount: code.count)

        let vm = try kvm.createVM()
        try vm.setIdentityMapAddress(MemoryMap.kvmIdentityMapAddress)
        try vm.setTSSAddress(MemoryMap.kvmTSSAddress)
        try vm.setMemoryRegion(slot: 0, guestAddress: 0, size: UInt64(memorySize), host: memory)
        let cpu = try vm.createVCPU(index: 0)
        try cpu.setCPUID(cpuid)
        try EntryState(mode: .real, rip: UInt64(codeAddress)).apply(to: cpu)

        // One exit is expected (HLT); allow a few interruptions (EINTR) on the way.
        for _ in 0..<16 {
            let error = cpu.enter()
            if error == EINTR || error == EAGAIN { continue }
            guard error == 0 else { throw Failure.guest("KVM_RUN failed: \(SystemError("KVM_RUN", errno: error))") }
            let reason = Int32(cpu.run.pointee.exit_reason)
            guard reason == KVM_EXIT_HLT else { throw Failure.guest("unexpected exit reason \(reason)") }
            return leaves.enumerated().map { i, l in
                let slot = memory + resultsAddress + 16 * i
                var e = kvm_cpuid_entry2()
                e.function = l.leaf
                e.index = l.subleaf
                e.flags = UInt32(KVM_CPUID_FLAG_SIGNIFCANT_INDEX)
                e.eax = slot.loadUnaligned(as: UInt32.self)
                e.ebx = slot.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
                e.ecx = slot.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
                e.edx = slot.loadUnaligned(fromByteOffset: 12, as: UInt32.self)
                return e
            }
        }
        throw Failure.guest("did not reach its HLT")
    }
}
