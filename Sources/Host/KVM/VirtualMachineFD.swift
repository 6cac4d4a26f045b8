import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// A KVM VM file descriptor: memory slots, the in-kernel irqchip, interrupt injection, vCPUs.
///
/// Unsafe-pointer invariants: every ioctl argument is a local value passed by address for the
/// duration of the call only.
public final class VirtualMachineFD: Sendable {
    public let fd: OwnedFD
    public let system: KVMSystem

    init(fd: OwnedFD, system: KVMSystem) {
        self.fd = fd
        self.system = system
    }

    private func call(_ request: UInt, _ what: String, _ argument: UnsafeMutableRawPointer?) throws(KVMError) {
        guard ckvm_ioctl(fd.raw, request, argument) == 0 else { throw .call(SystemError(what)) }
    }

    public func setMemoryRegion(slot: UInt32, guestAddress: UInt64, size: UInt64, host: UnsafeMutableRawPointer?, readOnly: Bool = false, logDirty: Bool = false) throws(KVMError) {
        var flags: UInt32 = 0
        if readOnly { flags |= UInt32(KVM_MEM_READONLY) }
        if logDirty { flags |= UInt32(KVM_MEM_LOG_DIRTY_PAGES) }
        var region = kvm_userspace_memory_region(
            slot: slot, flags: flags, guest_phys_addr: guestAddress, memory_size: size,
            userspace_addr: UInt64(UInt(bitPattern: host)))
        try call(CKVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION slot \(slot) at \(hex(guestAddress))", &region)
    }

    /// Copies the dirty bitmap of `slot` (one bit per 4 KiB page) and clears it in the kernel.
    public func dirtyLog(slot: UInt32, pages: Int) throws(KVMError) -> [UInt64] {
        var bitmap = [UInt64](repeating: 0, count: (pages + 63) / 64)
        let status = bitmap.withUnsafeMutableBytes { bytes in
            var log = kvm_dirty_log()
            log.slot = slot
            log.dirty_bitmap = bytes.baseAddress
            return ckvm_ioctl(fd.raw, CKVM_GET_DIRTY_LOG, &log)
        }
        guard status == 0 else { throw .call(SystemError("KVM_GET_DIRTY_LOG slot \(slot)")) }
        return bitmap
    }

    public func setTSSAddress(_ address: UInt64) throws(KVMError) {
        guard ckvm_ioctl_value(fd.raw, CKVM_SET_TSS_ADDR, UInt(address)) == 0 else { throw .call(SystemError("KVM_SET_TSS_ADDR")) }
    }

    public func setIdentityMapAddress(_ address: UInt64) throws(KVMError) {
        var value = address
        try call(CKVM_SET_IDENTITY_MAP_ADDR, "KVM_SET_IDENTITY_MAP_ADDR", &value)
    }

    /// PIC, IOAPIC and a LAPIC per vCPU, all in the kernel.
    public func createIRQChip() throws(KVMError) {
        try call(CKVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP", nil)
    }

    public func setIRQLine(_ gsi: UInt32, level: Bool) throws(KVMError) {
        var line = kvm_irq_level()
        line.irq = gsi
        line.level = level ? 1 : 0
        try call(CKVM_IRQ_LINE, "KVM_IRQ_LINE \(gsi)", &line)
    }

    public func signalMSI(address: UInt64, data: UInt32) throws(KVMError) {
        var msi = kvm_msi()
        msi.address_lo = UInt32(truncatingIfNeeded: address)
        msi.address_hi = UInt32(truncatingIfNeeded: address >> 32)
        msi.data = data
        guard ckvm_ioctl(fd.raw, CKVM_SIGNAL_MSI, &msi) >= 0 else { throw .call(SystemError("KVM_SIGNAL_MSI")) }
    }

    /// An eventfd the kernel signals when the guest writes `value` (any value if nil) to a port or
    /// MMIO address, without leaving the kernel.
    public func addIOEventFD(_ eventFD: Int32, address: UInt64, length: UInt32, isPIO: Bool, value: UInt64?) throws(KVMError) {
        try ioeventFD(eventFD, address: address, length: length, isPIO: isPIO, value: value, remove: false)
    }

    /// Undoes `addIOEventFD` (same arguments).
    public func removeIOEventFD(_ eventFD: Int32, address: UInt64, length: UInt32, isPIO: Bool, value: UInt64?) throws(KVMError) {
        try ioeventFD(eventFD, address: address, length: length, isPIO: isPIO, value: value, remove: true)
    }

    private func ioeventFD(_ eventFD: Int32, address: UInt64, length: UInt32, isPIO: Bool, value: UInt64?, remove: Bool) throws(KVMError) {
        var e = kvm_ioeventfd()
        if remove { e.flags |= UInt32(1 << kvm_ioeventfd_flag_nr_deassign) }
        e.addr = address
        e.len = length
        e.fd = eventFD
        if isPIO { e.flags |= UInt32(1 << kvm_ioeventfd_flag_nr_pio) }
        if let value {
            e.datamatch = value
            e.flags |= UInt32(1 << kvm_ioeventfd_flag_nr_datamatch)
        }
        try call(CKVM_IOEVENTFD, "KVM_IOEVENTFD at \(hex(address))", &e)
    }

    /// An eventfd whose signal raises `gsi` in the in-kernel irqchip.
    public func addIRQFD(_ eventFD: Int32, gsi: UInt32) throws(KVMError) {
        var i = kvm_irqfd()
        i.fd = UInt32(bitPattern: eventFD)
        i.gsi = gsi
        try call(CKVM_IRQFD, "KVM_IRQFD gsi \(gsi)", &i)
    }

    public func enableCapability(_ cap: UInt32, _ args: [UInt64] = []) throws(KVMError) {
        var c = kvm_enable_cap()
        c.cap = cap
        withUnsafeMutableBytes(of: &c.args) { raw in
            for (i, a) in args.prefix(4).enumerated() { raw.storeBytes(of: a, toByteOffset: i * 8, as: UInt64.self) }
        }
        try call(CKVM_ENABLE_CAP, "KVM_ENABLE_CAP \(cap)", &c)
    }

    /// Sends reads and writes of the MSRs in `ranges` (each [first, first + count)) to user space
    /// (KVM_EXIT_X86_RDMSR / WRMSR) instead of letting KVM answer them; every other MSR stays
    /// KVM's. Needs KVM_CAP_X86_USER_SPACE_MSR enabled; at most 16 ranges (KVM_MSR_FILTER_MAX_RANGES).
    public func denyMSRs(_ ranges: [(first: UInt32, count: UInt32)]) throws(KVMError) {
        guard ranges.count <= 16 else { throw .call(SystemError("KVM_X86_SET_MSR_FILTER: \(ranges.count) ranges", errno: EINVAL)) }
        // 0 bits = deny = exit. One zeroed allocation holds every bitmap until the ioctl has
        // copied them.
        let sizes = ranges.map { Int(($0.count + 7) / 8) }
        let bitmaps = UnsafeMutableRawPointer.allocate(byteCount: max(sizes.reduce(0, +), 1), alignment: 8)
        defer { bitmaps.deallocate() }
        bitmaps.initializeMemory(as: UInt8.self, repeating: 0, count: max(sizes.reduce(0, +), 1))
        var filter = kvm_msr_filter()
        filter.flags = UInt32(KVM_MSR_FILTER_DEFAULT_ALLOW)
        withUnsafeMutableBytes(of: &filter.ranges) { slots in
            var at = 0
            for (i, r) in ranges.enumerated() {
                var range = kvm_msr_filter_range()
                range.flags = UInt32(KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE)
                range.nmsrs = r.count
                range.base = r.first
                range.bitmap = (bitmaps + at).assumingMemoryBound(to: UInt8.self)
                slots.storeBytes(of: range, toByteOffset: i * MemoryLayout<kvm_msr_filter_range>.stride, as: kvm_msr_filter_range.self)
                at += sizes[i]
            }
        }
        let status = ckvm_ioctl(fd.raw, CKVM_X86_SET_MSR_FILTER, &filter)
        guard status == 0 else { throw .call(SystemError("KVM_X86_SET_MSR_FILTER")) }
    }

    public func createVCPU(index: UInt32) throws(KVMError) -> VCPUFD {
        let raw = ckvm_ioctl_value(fd.raw, CKVM_CREATE_VCPU, UInt(index))
        guard raw >= 0 else { throw .call(SystemError("KVM_CREATE_VCPU \(index)")) }
        return try VCPUFD(fd: OwnedFD(raw), index: index, mapSize: system.vcpuMapSize)
    }
}
