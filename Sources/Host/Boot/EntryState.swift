import CKVM

/// The architectural state a vCPU is given to start a guest: mode, flat segments, registers.
/// A loader computes it without KVM (so tests can inspect it); `apply(to:)` hands it to a vCPU.
public struct EntryState: Sendable, Equatable {
    public var mode: CPUMode
    public var selectors: BootSelectors
    public var rip: UInt64
    public var rax: UInt64 = 0
    public var rbx: UInt64 = 0
    public var rcx: UInt64 = 0
    public var rdx: UInt64 = 0
    public var rsi: UInt64 = 0
    public var rdi: UInt64 = 0
    public var rsp: UInt64 = 0
    public var rbp: UInt64 = 0
    /// Reserved bit 1 only: interrupts off, as every boot protocol asks.
    public var rflags: UInt64 = 0x2
    /// Long mode's CR3: the flat contract's fixed tables, or wherever a loader placed its own.
    public var pageTables: UInt64 = CPUMode.pml4Address

    public init(mode: CPUMode, selectors: BootSelectors = .flat, rip: UInt64) {
        self.mode = mode
        self.selectors = selectors
        self.rip = rip
    }

    /// Sets the vCPU's special and general registers; the GDT and page tables must already be in
    /// guest memory (`CPUMode.writeTables`).
    func apply(to cpu: VCPUFD) throws(KVMError) {
        var s = try cpu.specialRegisters()
        switch mode {
        case .real:
            for keyPath in [\kvm_sregs.cs, \.ds, \.es, \.fs, \.gs, \.ss] {
                s[keyPath: keyPath].base = 0
                s[keyPath: keyPath].selector = 0
            }
        case .protected, .long:
            var code = kvm_segment()
            code.base = 0
            code.limit = 0xFFFF_FFFF
            code.selector = selectors.code
            code.type = 11
            code.present = 1
            code.s = 1
            code.g = 1
            code.db = mode == .long ? 0 : 1
            code.l = mode == .long ? 1 : 0
            var data = code
            data.selector = selectors.data
            data.type = 3
            data.db = 1
            data.l = 0
            s.cs = code
            s.ds = data; s.es = data; s.fs = data; s.gs = data; s.ss = data
            // PVH asks for a busy 32-bit TSS at base 0, limit 0x67; the others leave TR unspecified.
            s.tr.base = 0
            s.tr.limit = 0x67
            s.tr.selector = 0
            s.tr.type = 11
            s.tr.present = 1
            s.tr.s = 0
            s.gdt.base = CPUMode.gdtAddress
            s.gdt.limit = selectors.gdtLimit
            if mode == .long {
                s.cr3 = pageTables
                s.cr4 = 0x20 | 0x200 | 0x400         // PAE, OSFXSR, OSXMMEXCPT
                s.cr0 = 0x8001_0033                  // PG, WP, NE, ET, MP, PE
                s.efer = 0x500                       // LMA, LME
            } else {
                s.cr0 = 0x11                         // ET, PE
            }
        }
        try cpu.setSpecialRegisters(s)
        var r = kvm_regs()
        r.rip = rip
        r.rflags = rflags
        r.rax = rax; r.rbx = rbx; r.rcx = rcx; r.rdx = rdx
        r.rsi = rsi; r.rdi = rdi; r.rsp = rsp; r.rbp = rbp
        try cpu.setRegisters(r)
    }
}

/// What a loader hands the machine: the bootstrap processor's entry state, and whether the other
/// vCPUs start there too (the flat contract) or wait in KVM's reset state for INIT/SIPI as on a PC.
public struct BootEntry: Sendable, Equatable {
    public var state: EntryState
    public var startsAllVCPUs: Bool

    public init(state: EntryState, startsAllVCPUs: Bool = false) {
        self.state = state
        self.startsAllVCPUs = startsAllVCPUs
    }

    /// The state vCPU `index` of `count` starts in, or nil to leave it uninitialised (an AP
    /// waiting for INIT/SIPI). Flat images get RDI = index and RSI = count on every vCPU.
    public func state(forVCPU index: UInt32, count: UInt32) -> EntryState? {
        guard startsAllVCPUs else { return index == 0 ? state : nil }
        var s = state
        s.rdi = UInt64(index)
        s.rsi = UInt64(count)
        return s
    }
}
