/// Where the tables ended up: what the boot loaders and the e820 map need to know.
public struct FirmwareLayout: Sendable, Equatable {
    /// An e820 entry the firmware needs: its type number is the e820 one.
    public struct MemoryRange: Sendable, Equatable {
        public enum Kind: UInt32, Sendable, Equatable {
            case reserved = 2
            case acpiReclaimable = 3
            case acpiNVS = 4
        }

        public let start: UInt64
        public let size: UInt64
        public let kind: Kind
    }

    /// One table, for diagnostics and tests.
    public struct Table: Sendable, Equatable {
        public let signature: String
        public let address: UInt64
        public let size: Int
    }

    /// For the zero page's acpi_rsdp_addr and PVH's rsdp_paddr.
    public let rsdpAddress: UInt64
    public let mpFloatingPointerAddress: UInt64
    /// The IOAPIC id both the MADT and the MP table announce: the vCPU count, after the APIC ids.
    /// KVM's IOAPIC ID register holds 4 bits and resets to 0; xAPIC-era OSes take the tables'
    /// word for it, and the core may program it (KVM_SET_IRQCHIP) when the id fits.
    public let ioapicID: UInt8
    /// The placement's three regions, sorted by address, for e820.
    public let memoryRanges: [MemoryRange]
    public let tables: [Table]

    public func table(_ signature: String) -> Table? { tables.first { $0.signature == signature } }
}
