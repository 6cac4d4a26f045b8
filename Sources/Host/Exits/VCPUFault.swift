import CKVM

/// A vCPU exit the VM cannot continue from, with the guest state needed to understand it.
public struct VCPUFault: Error, CustomStringConvertible, Sendable {
    public var vcpu: UInt32
    public var reason: String
    public var registers: String

    public var description: String { "vCPU \(vcpu): \(reason)" }

    /// The one-line error followed by the register report.
    public var report: String { "\(description)\n\(registers)" }

    static func capture(_ cpu: VCPUFD, reason: String) -> VCPUFault {
        var lines: [String] = []
        var rip = "unknown"
        if let r = try? cpu.registers() {
            rip = hex16(r.rip)
            lines.append("  rip \(hex16(r.rip))  rsp \(hex16(r.rsp))  rflags \(hex16(r.rflags))")
            lines.append("  rax \(hex16(r.rax))  rbx \(hex16(r.rbx))  rcx \(hex16(r.rcx))  rdx \(hex16(r.rdx))")
            lines.append("  rsi \(hex16(r.rsi))  rdi \(hex16(r.rdi))  rbp \(hex16(r.rbp))")
        }
        if let s = try? cpu.specialRegisters() {
            lines.append("  cr0 \(hex16(s.cr0))  cr3 \(hex16(s.cr3))  cr4 \(hex16(s.cr4))  efer \(hex16(s.efer))")
            lines.append("  cs \(hex16(UInt64(s.cs.selector))) base \(hex16(s.cs.base))  cpl \(s.cs.dpl)  long \(s.cs.l)")
        }
        return VCPUFault(vcpu: cpu.index, reason: "\(reason) at RIP \(rip)", registers: lines.joined(separator: "\n"))
    }

    private static func hex16(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 16 - s.count)) + s
    }
}
