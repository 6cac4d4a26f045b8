import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// A vCPU file descriptor and its shared `kvm_run` page.
///
/// Unsafe-pointer invariants: `run` maps `mapSize` bytes of the vCPU fd and stays mapped until
/// deinit; only the vCPU's own thread touches it while KVM_RUN may be in progress, except for
/// `immediate_exit`, a single byte the kick path writes before signalling that thread.
public final class VCPUFD: @unchecked Sendable {
    public let fd: OwnedFD
    public let index: UInt32
    public let run: UnsafeMutablePointer<kvm_run>
    private let mapSize: Int

    init(fd: OwnedFD, index: UInt32, mapSize: Int) throws(KVMError) {
        guard let map = mmap(nil, mapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.raw, 0), map != MAP_FAILED else {
            throw .call(SystemError("mmap kvm_run of vCPU \(index)"))
        }
        self.fd = fd
        self.index = index
        self.mapSize = mapSize
        run = map.bindMemory(to: kvm_run.self, capacity: 1)
    }

    deinit { munmap(run, mapSize) }

    private func call(_ request: UInt, _ what: String, _ argument: UnsafeMutableRawPointer?) throws(KVMError) {
        guard ckvm_ioctl(fd.raw, request, argument) == 0 else { throw .call(SystemError("\(what) (vCPU \(index))")) }
    }

    /// Enters the guest. Returns 0, or the errno (EINTR when kicked).
    @inline(__always)
    public func enter() -> Int32 {
        ckvm_ioctl_value(fd.raw, CKVM_RUN, 0) == 0 ? 0 : errno
    }

    public func registers() throws(KVMError) -> kvm_regs {
        var r = kvm_regs()
        try call(CKVM_GET_REGS, "KVM_GET_REGS", &r)
        return r
    }

    public func setRegisters(_ regs: kvm_regs) throws(KVMError) {
        var r = regs
        try call(CKVM_SET_REGS, "KVM_SET_REGS", &r)
    }

    public func specialRegisters() throws(KVMError) -> kvm_sregs {
        var s = kvm_sregs()
        try call(CKVM_GET_SREGS, "KVM_GET_SREGS", &s)
        return s
    }

    public func setSpecialRegisters(_ sregs: kvm_sregs) throws(KVMError) {
        var s = sregs
        try call(CKVM_SET_SREGS, "KVM_SET_SREGS", &s)
    }

    public func setCPUID(_ entries: [kvm_cpuid_entry2]) throws(KVMError) {
        let header = MemoryLayout<kvm_cpuid2>.size
        let entrySize = MemoryLayout<kvm_cpuid_entry2>.stride
        let bytes = header + entrySize * entries.count
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        buffer.storeBytes(of: UInt32(entries.count), as: UInt32.self)
        for (i, e) in entries.enumerated() { (buffer + header + i * entrySize).storeBytes(of: e, as: kvm_cpuid_entry2.self) }
        try call(CKVM_SET_CPUID2, "KVM_SET_CPUID2", buffer)
    }

    /// Pending and injected exceptions, interrupts and NMIs.
    public func events() throws(KVMError) -> kvm_vcpu_events {
        var e = kvm_vcpu_events()
        try call(CKVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS", &e)
        return e
    }

    public func setEvents(_ events: kvm_vcpu_events) throws(KVMError) {
        var e = events
        try call(CKVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", &e)
    }

    /// One MSR through KVM_GET_MSRS (an ioctl: keep it off hot paths).
    public func msr(_ index: UInt32) throws(KVMError) -> UInt64 {
        let size = MemoryLayout<kvm_msrs>.size + MemoryLayout<kvm_msr_entry>.stride
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        buffer.storeBytes(of: UInt32(1), as: UInt32.self)
        let entry = buffer + MemoryLayout<kvm_msrs>.size
        entry.storeBytes(of: index, as: UInt32.self)
        guard ckvm_ioctl(fd.raw, CKVM_GET_MSRS, buffer) == 1 else { throw .call(SystemError("KVM_GET_MSRS \(hex(index))")) }
        return entry.load(fromByteOffset: 8, as: UInt64.self)
    }

    /// The guest TSC frequency in Hz.
    public func tscFrequency() throws(KVMError) -> UInt64 {
        let khz = ckvm_ioctl_value(fd.raw, CKVM_GET_TSC_KHZ, 0)
        guard khz > 0 else { throw .call(SystemError("KVM_GET_TSC_KHZ")) }
        return UInt64(khz) * 1000
    }

    /// Asks KVM to load the general registers from `kvm_run` on the next entry.
    @inline(__always)
    public func markRegistersDirty() {
        run.pointee.kvm_dirty_regs = UInt64(KVM_SYNC_X86_REGS)
    }

    public func setMPState(_ state: UInt32) throws(KVMError) {
        var s = kvm_mp_state(mp_state: state)
        try call(CKVM_SET_MP_STATE, "KVM_SET_MP_STATE", &s)
    }

    /// Asks KVM to copy the general registers into `kvm_run` on every exit (and back on entry when
    /// marked dirty), so exit handlers that need them cost no extra ioctl.
    public func syncRegistersOnExit(_ enabled: Bool) {
        run.pointee.kvm_valid_regs = enabled ? UInt64(KVM_SYNC_X86_REGS) : 0
    }

    /// Makes the next (or current) KVM_RUN return at once with EINTR.
    public func requestImmediateExit() {
        run.pointee.immediate_exit = 1
    }
}
