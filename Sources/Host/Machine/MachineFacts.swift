import VeneerPluginABI

/// What a device may learn about the machine it is part of (ABI 1.3 `machine_fact`): known once
/// the machine is built (memory map, boot files, ACPI tables), after devices are created.
/// Each fact's byte encoding lives here, one place for the VMM and the test harness.
public struct MachineFacts: Sendable, Equatable {
    /// A boot file: bytes at hand (tests), or a path read when a device first asks.
    public enum File: Sendable, Equatable {
        case none
        case bytes([UInt8])
        /// A boot file read when asked for; `key` names it in the config for errors.
        case path(String, role: String, key: String = "boot.kernel")
    }

    public var vcpuCount: UInt32
    public var ramBytes: UInt64
    public var memoryMap: [E820Map.Entry]
    public var kernel: File
    public var initrd: File
    public var cmdline: String
    public var acpi: ACPILinkedTables?
    /// The VM's name (VENEER_FACT_VM_NAME).
    public var vmName: String

    public init(vcpuCount: UInt32, ramBytes: UInt64, memoryMap: [E820Map.Entry], kernel: File = .none, initrd: File = .none,
                cmdline: String = "", acpi: ACPILinkedTables? = nil, vmName: String = "") {
        self.vcpuCount = vcpuCount
        self.ramBytes = ramBytes
        self.memoryMap = memoryMap
        self.kernel = kernel
        self.initrd = initrd
        self.cmdline = cmdline
        self.acpi = acpi
        self.vmName = vmName
    }

    /// The facts of a machine booting `boot`: its kernel, initrd (or first module) and command line.
    public init(vcpuCount: UInt32, ramBytes: UInt64, memoryMap: E820Map, boot: BootImage, acpi: ACPILinkedTables?, vmName: String = "") {
        var kernel = File.path(boot.path, role: "boot image"), initrd = File.none, cmdline = ""
        switch boot {
        case .flat: kernel = .none
        case .bzImage(let b): initrd = b.initrd.map { .path($0, role: "initrd", key: "boot.initrd") } ?? .none; cmdline = b.cmdline
        case .pvh(let p): initrd = p.initrd.map { .path($0, role: "initrd", key: "boot.initrd") } ?? .none; cmdline = p.cmdline
        case .multiboot(let m): initrd = m.modules.first.map { .path($0.path, role: "module 1", key: "boot.module[0].path") } ?? .none; cmdline = m.cmdline
        }
        self.init(vcpuCount: vcpuCount, ramBytes: ramBytes, memoryMap: memoryMap.entries, kernel: kernel, initrd: initrd,
                  cmdline: cmdline, acpi: acpi, vmName: vmName)
    }

    public enum FactError: Error, Equatable {
        case unknown(UInt32)
        case unreadable(String)
    }

    /// Fact `fact` as the ABI lays it out.
    public func bytes(of fact: UInt32, fileLimit: UInt64) throws(FactError) -> [UInt8] {
        switch fact {
        case UInt32(VENEER_FACT_VCPU_COUNT.rawValue): return littleEndian(vcpuCount)
        case UInt32(VENEER_FACT_RAM_BYTES.rawValue): return littleEndian(ramBytes)
        case UInt32(VENEER_FACT_MEMORY_MAP.rawValue):
            return memoryMap.flatMap { littleEndian($0.start) + littleEndian($0.size) + littleEndian($0.kind.rawValue) + littleEndian(UInt32(0)) }
        case UInt32(VENEER_FACT_KERNEL.rawValue): return try Self.read(kernel, limit: fileLimit)
        case UInt32(VENEER_FACT_INITRD.rawValue): return try Self.read(initrd, limit: fileLimit)
        case UInt32(VENEER_FACT_CMDLINE.rawValue): return Array(cmdline.utf8)
        case UInt32(VENEER_FACT_ACPI_TABLES.rawValue): return acpi?.tables ?? []
        case UInt32(VENEER_FACT_ACPI_RSDP.rawValue): return acpi?.rsdp ?? []
        case UInt32(VENEER_FACT_ACPI_LOADER.rawValue): return acpi?.loader ?? []
        case UInt32(VENEER_FACT_VM_NAME.rawValue): return Array(vmName.utf8)
        default: throw .unknown(fact)
        }
    }

    private static func read(_ file: File, limit: UInt64) throws(FactError) -> [UInt8] {
        switch file {
        case .none: return []
        case .bytes(let b): return b
        case .path(let path, let role, let key):
            do { return try BootFile.read(path, role: role, key: key, limit: limit).bytes } catch { throw .unreadable(error.description) }
        }
    }
}
