import VeneerPluginABI

/// A PCI function as a plugin describes it to `pci_register`, decoded from `veneer_pci_function`
/// but not yet checked (`PCIFunctionLayout` checks it).
public struct PCIFunctionRequest: Sendable, Equatable {
    public var vendorID: UInt16
    public var deviceID: UInt16
    public var subsystemVendorID: UInt16
    public var subsystemID: UInt16
    /// 24 bits: base class, subclass, programming interface.
    public var classCode: UInt32
    public var revision: UInt8
    /// 0: none, 1-4: INTA#-INTD#.
    public var interruptPin: UInt8
    public var interruptLine: UInt8
    /// 1-31, or 0 for the lowest free device number.
    public var slot: UInt8
    public var capabilityPointer: UInt8
    /// Configuration-space bytes from 0x40 on.
    public var capabilities: [UInt8]
    /// Six slots, as in the header.
    public var bars: [BAR]

    public struct BAR: Sendable, Equatable {
        public var size: UInt64
        public var flags: UInt32
        public var region: UInt32

        public init(size: UInt64, flags: UInt32, region: UInt32) {
            self.size = size
            self.flags = flags
            self.region = region
        }

        public static let unused = BAR(size: 0, flags: 0, region: 0)
    }

    public init(vendorID: UInt16, deviceID: UInt16, subsystemVendorID: UInt16 = 0, subsystemID: UInt16 = 0,
                classCode: UInt32, revision: UInt8 = 0, interruptPin: UInt8 = 0, interruptLine: UInt8 = 0xFF,
                slot: UInt8 = 0, capabilityPointer: UInt8 = 0, capabilities: [UInt8] = [],
                bars: [BAR] = Array(repeating: .unused, count: 6)) {
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.subsystemVendorID = subsystemVendorID
        self.subsystemID = subsystemID
        self.classCode = classCode
        self.revision = revision
        self.interruptPin = interruptPin
        self.interruptLine = interruptLine
        self.slot = slot
        self.capabilityPointer = capabilityPointer
        self.capabilities = capabilities
        self.bars = bars
    }
}

/// Why `pci_register` refused a function.
public struct PCIRegistrationError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable { case invalid, busy }
    public var kind: Kind
    public var reason: String
    public var description: String { reason }

    static func invalid(_ reason: String) -> PCIRegistrationError { PCIRegistrationError(kind: .invalid, reason: reason) }
    static func busy(_ reason: String) -> PCIRegistrationError { PCIRegistrationError(kind: .busy, reason: reason) }

    public var status: veneer_status { kind == .busy ? .busy : .invalid }
}
