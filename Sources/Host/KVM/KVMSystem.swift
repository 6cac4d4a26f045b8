import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// `/dev/kvm`: the API version, capabilities and the CPUID the host supports.
///
/// Unsafe-pointer invariants: the CPUID buffer is sized for `maxCPUIDEntries` entries before the
/// ioctl and read back only up to the `nent` the kernel wrote.
public final class KVMSystem: Sendable {
    public static let defaultPath = "/dev/kvm"

    /// What the core relies on, checked once at start so a missing one is named up front.
    static let requiredCapabilities: [(String, UInt32)] = [
        ("KVM_CAP_USER_MEMORY", UInt32(KVM_CAP_USER_MEMORY)),
        ("KVM_CAP_IRQCHIP", UInt32(KVM_CAP_IRQCHIP)),
        ("KVM_CAP_SET_TSS_ADDR", UInt32(KVM_CAP_SET_TSS_ADDR)),
        ("KVM_CAP_EXT_CPUID", UInt32(KVM_CAP_EXT_CPUID)),
        ("KVM_CAP_IMMEDIATE_EXIT", UInt32(KVM_CAP_IMMEDIATE_EXIT)),
        ("KVM_CAP_SIGNAL_MSI", UInt32(KVM_CAP_SIGNAL_MSI)),
        ("KVM_CAP_IRQFD", UInt32(KVM_CAP_IRQFD)),
        ("KVM_CAP_IOEVENTFD", UInt32(KVM_CAP_IOEVENTFD)),
        ("KVM_CAP_SYNC_REGS", UInt32(KVM_CAP_SYNC_REGS)),
    ]

    static let maxCPUIDEntries = 256

    public let fd: OwnedFD
    public let vcpuMapSize: Int

    /// True when `path` exists and can be opened; tests use it to decide whether to skip.
    public static func isAvailable(path: String = defaultPath) -> Bool {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    public init(path: String = defaultPath) throws(KVMError) {
        let raw = open(path, O_RDWR | O_CLOEXEC)
        guard raw >= 0 else { throw .unavailable(path: path, reason: SystemError("open").description) }
        fd = OwnedFD(raw)
        let version = ckvm_ioctl_value(raw, CKVM_GET_API_VERSION, 0)
        guard version == 12 else { throw .apiVersion(version) }
        let missing = Self.requiredCapabilities.filter { ckvm_ioctl_value(raw, CKVM_CHECK_EXTENSION, UInt($0.1)) <= 0 }
        guard missing.isEmpty else { throw .missingCapabilities(missing.map(\.0)) }
        let size = ckvm_ioctl_value(raw, CKVM_GET_VCPU_MMAP_SIZE, 0)
        guard size > 0 else { throw .call(SystemError("KVM_GET_VCPU_MMAP_SIZE")) }
        vcpuMapSize = Int(size)
    }

    public func capability(_ cap: Int32) -> Int32 {
        ckvm_ioctl_value(fd.raw, CKVM_CHECK_EXTENSION, UInt(cap))
    }

    public func supportedCPUID() throws(KVMError) -> [kvm_cpuid_entry2] {
        let header = MemoryLayout<kvm_cpuid2>.size
        let entrySize = MemoryLayout<kvm_cpuid_entry2>.stride
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: header + entrySize * Self.maxCPUIDEntries, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: header + entrySize * Self.maxCPUIDEntries)
        buffer.storeBytes(of: UInt32(Self.maxCPUIDEntries), as: UInt32.self)
        guard ckvm_ioctl(fd.raw, CKVM_GET_SUPPORTED_CPUID, buffer) == 0 else {
            throw .call(SystemError("KVM_GET_SUPPORTED_CPUID"))
        }
        let count = Int(buffer.load(as: UInt32.self))
        return (0..<min(count, Self.maxCPUIDEntries)).map {
            (buffer + header + $0 * entrySize).load(as: kvm_cpuid_entry2.self)
        }
    }

    public func createVM() throws(KVMError) -> VirtualMachineFD {
        let raw = ckvm_ioctl_value(fd.raw, CKVM_CREATE_VM, 0)
        guard raw >= 0 else { throw .call(SystemError("KVM_CREATE_VM")) }
        return VirtualMachineFD(fd: OwnedFD(raw), system: self)
    }
}
