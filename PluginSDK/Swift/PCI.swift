import VeneerPluginABI

/// A PCI function a device puts on the VM's PCI bus (`HostServices.registerPCIFunction`).
/// The core emulates its header and moves its BARs where the guest programs them; accesses
/// through a BAR arrive at `VeneerDevice.io` with the BAR's region id.
public struct PCIFunction: Sendable, Equatable {
    public var vendorID: UInt16
    public var deviceID: UInt16
    public var subsystemVendorID: UInt16
    public var subsystemID: UInt16
    /// 24 bits: base class << 16 | subclass << 8 | programming interface.
    public var classCode: UInt32
    public var revision: UInt8
    public var interruptPin: InterruptPin?
    /// The GSI the device drives with `setIRQ`, which the Interrupt Line register starts as.
    public var interruptLine: UInt8?
    /// Device number 1-31 on bus 0; nil: the lowest free one.
    public var slot: UInt8?
    /// BAR0-BAR5 (a 64-bit BAR takes the next slot too, which must be nil). Fewer than six
    /// entries leave the rest unused.
    public var bars: [BAR?]
    /// Laid out from 0x40 in order, each dword aligned and chained (`capabilityOffsets`).
    public var capabilities: [Capability]

    public enum InterruptPin: UInt8, Sendable {
        case a = 1, b, c, d
    }

    public struct BAR: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            case io
            case memory32(prefetchable: Bool)
            case memory64(prefetchable: Bool)
        }

        public var kind: Kind
        /// A power of two: I/O 4...256 bytes, memory at least 16 bytes (at most 2 GiB if 32-bit).
        public var size: UInt64
        /// The region id `io` reports for accesses through this BAR.
        public var region: UInt32

        public static func io(size: UInt64, region: UInt32) -> BAR { BAR(kind: .io, size: size, region: region) }
        public static func memory32(size: UInt64, region: UInt32, prefetchable: Bool = false) -> BAR {
            BAR(kind: .memory32(prefetchable: prefetchable), size: size, region: region)
        }
        public static func memory64(size: UInt64, region: UInt32, prefetchable: Bool = false) -> BAR {
            BAR(kind: .memory64(prefetchable: prefetchable), size: size, region: region)
        }

        var flags: UInt32 {
            switch kind {
            case .io: UInt32(VENEER_PCI_BAR_IO)
            case .memory32(let p): p ? UInt32(VENEER_PCI_BAR_PREFETCH) : 0
            case .memory64(let p): UInt32(VENEER_PCI_BAR_MEM64) | (p ? UInt32(VENEER_PCI_BAR_PREFETCH) : 0)
            }
        }
    }

    /// One capability: its ID and the bytes after the ID and next-pointer bytes.
    public struct Capability: Sendable, Equatable {
        public var id: UInt8
        public var body: [UInt8]

        public init(id: UInt8, body: [UInt8]) {
            self.id = id
            self.body = body
        }
    }

    public init(vendorID: UInt16, deviceID: UInt16, subsystemVendorID: UInt16 = 0, subsystemID: UInt16 = 0,
                classCode: UInt32, revision: UInt8 = 0, interruptPin: InterruptPin? = nil, interruptLine: UInt8? = nil,
                slot: UInt8? = nil, bars: [BAR?] = [], capabilities: [Capability] = []) {
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.subsystemVendorID = subsystemVendorID
        self.subsystemID = subsystemID
        self.classCode = classCode
        self.revision = revision
        self.interruptPin = interruptPin
        self.interruptLine = interruptLine
        self.slot = slot
        self.bars = bars
        self.capabilities = capabilities
    }

    /// Where each capability starts in configuration space.
    public var capabilityOffsets: [UInt32] {
        var offsets: [UInt32] = []
        var next: UInt32 = 0x40
        for c in capabilities {
            offsets.append(next)
            next += (UInt32(2 + c.body.count) + 3) & ~3
        }
        return offsets
    }

    /// The configuration bytes from 0x40 on: the capabilities, chained.
    var capabilityBytes: [UInt8] {
        let offsets = capabilityOffsets
        var bytes: [UInt8] = []
        for (i, c) in capabilities.enumerated() {
            let next = i + 1 < offsets.count ? UInt8(truncatingIfNeeded: offsets[i + 1]) : 0
            bytes += [c.id, next] + c.body
            while bytes.count % 4 != 0 { bytes.append(0) }
        }
        return bytes
    }
}

/// One access to a PCI function's configuration space that reaches the plugin (see the "PCI"
/// section of veneer_plugin.h): offsets 0x40-0xFF, or a header write the core already applied.
public struct PCIConfigAccess: Sendable, Equatable {
    /// The function's address, as `registerPCIFunction` returned it.
    public var function: UInt32
    public var offset: UInt32
    public var size: Int
    public var isWrite: Bool
    /// A header (0x00-0x3F) write the core applied; the data is what now reads back there.
    public var isHeaderUpdate: Bool

    public init(function: UInt32, offset: UInt32, size: Int, isWrite: Bool, isHeaderUpdate: Bool = false) {
        self.function = function
        self.offset = offset
        self.size = size
        self.isWrite = isWrite
        self.isHeaderUpdate = isHeaderUpdate
    }

    /// Whether the access touches the bytes [start, start + count).
    public func touches(_ start: UInt32, count: UInt32) -> Bool { offset < start + count && start < offset + UInt32(size) }
}
