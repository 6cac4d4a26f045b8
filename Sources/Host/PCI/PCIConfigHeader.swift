/// The part of one function's configuration space the core emulates: the type-0 header
/// (0x00-0x3F), plus the capability bytes it presets for reads from 0x40 on. veneer_plugin.h
/// ("PCI") states the rules for each register; this is their one implementation.
struct PCIConfigHeader: Sendable {
    let vendorID: UInt16
    let deviceID: UInt16
    let subsystemVendorID: UInt16
    let subsystemID: UInt16
    let classCode: UInt32
    let revision: UInt8
    let interruptPin: UInt8
    let capabilityPointer: UInt8
    /// Bytes from 0x40 on, at most 192.
    let capabilities: [UInt8]
    let resetCommand: UInt16
    let resetInterruptLine: UInt8
    /// Six slots as in the header; the slot after a 64-bit BAR is nil (it holds the upper half).
    private(set) var bars: [PCIBAR?]
    private(set) var command: UInt16
    private var cacheLineSize: UInt8 = 0
    private var latencyTimer: UInt8 = 0
    private var interruptLine: UInt8

    static let headerBytes: UInt32 = 0x40
    static let configBytes: UInt32 = 0x100
    static let barCount = 6
    /// I/O space, memory space, bus master, parity error response, SERR# enable, interrupt disable.
    static let writableCommand: UInt16 = 0x0547
    static let ioSpaceEnable: UInt16 = 0x1
    static let memorySpaceEnable: UInt16 = 0x2
    static let capabilitiesListStatus: UInt16 = 0x10
    /// A conventional-PCI capability list holds at most (0x100 - 0x40) / 4 entries.
    static let maxCapabilities = 48

    /// The header for a plugin's function, or why its description is malformed.
    /// `hasConfigCallback`: the plugin can answer capability reads itself, so a capability pointer
    /// without capability bytes is allowed.
    init(validating r: PCIFunctionRequest, hasConfigCallback: Bool) throws(PCIRegistrationError) {
        guard r.vendorID != 0xFFFF, r.vendorID != 0 else {
            throw .invalid("vendor id \(hex(r.vendorID)) is reserved (0xffff reads as an absent function)")
        }
        guard r.classCode <= 0xFF_FFFF else { throw .invalid("class code \(hex(r.classCode)) is wider than 24 bits") }
        guard r.interruptPin <= 4 else { throw .invalid("interrupt pin \(r.interruptPin) is not 0 (none) or 1-4 (INTA#-INTD#)") }
        guard r.bars.count == Self.barCount else { throw .invalid("\(r.bars.count) BAR slots instead of 6") }
        var bars: [PCIBAR?] = Array(repeating: nil, count: Self.barCount)
        var regions = Set<UInt32>()
        var index = 0
        while index < Self.barCount {
            let slot = r.bars[index]
            defer { index += 1 }
            guard slot.size != 0 else { continue }
            let bar = try PCIBAR(slot, index: index)
            guard regions.insert(bar.region).inserted else { throw .invalid("BAR\(index) reuses region id \(bar.region)") }
            bars[index] = bar
            if bar.space == .memory64 {
                guard index + 1 < Self.barCount else { throw .invalid("BAR5 cannot be 64-bit: it needs the next slot too") }
                guard r.bars[index + 1].size == 0 else { throw .invalid("BAR\(index) is 64-bit, so BAR\(index + 1) must be unused") }
                index += 1
            }
        }
        let maxCapabilityBytes = Int(Self.configBytes - Self.headerBytes)
        guard r.capabilities.count <= maxCapabilityBytes else {
            throw .invalid("\(r.capabilities.count) capability bytes exceed the \(maxCapabilityBytes) from 0x40 to 0xff")
        }
        if r.capabilityPointer != 0 {
            if r.capabilities.isEmpty {
                guard hasConfigCallback else {
                    throw .invalid("capability pointer \(hex(r.capabilityPointer)) without capability bytes or a pci_config callback")
                }
                guard Self.isCapabilityOffset(r.capabilityPointer) else {
                    throw .invalid("capability pointer \(hex(r.capabilityPointer)) is not a dword in 0x40...0xfc")
                }
            } else {
                try Self.checkChain(from: r.capabilityPointer, in: r.capabilities)
            }
        }
        vendorID = r.vendorID
        deviceID = r.deviceID
        subsystemVendorID = r.subsystemVendorID
        subsystemID = r.subsystemID
        classCode = r.classCode
        revision = r.revision
        interruptPin = r.interruptPin
        capabilityPointer = r.capabilityPointer
        capabilities = r.capabilities
        resetCommand = 0
        resetInterruptLine = r.interruptLine
        self.bars = bars
        command = resetCommand
        interruptLine = resetInterruptLine
    }

    /// The core's own host bridge at 00:00.0: an Intel 440BX (82443BX, AGP disabled), rev 03,
    /// the host bridge a Hyper-V generation 1 VM shows. Memory and bus-master enabled from reset,
    /// as on the real part.
    static func hostBridge() -> PCIConfigHeader {
        PCIConfigHeader(vendorID: 0x8086, deviceID: 0x7192, classCode: 0x06_0000, revision: 0x03, resetCommand: 0x0006)
    }

    private init(vendorID: UInt16, deviceID: UInt16, classCode: UInt32, revision: UInt8, resetCommand: UInt16) {
        self.vendorID = vendorID
        self.deviceID = deviceID
        subsystemVendorID = 0
        subsystemID = 0
        self.classCode = classCode
        self.revision = revision
        interruptPin = 0
        capabilityPointer = 0
        capabilities = []
        self.resetCommand = resetCommand
        resetInterruptLine = 0
        bars = Array(repeating: nil, count: Self.barCount)
        command = resetCommand
        interruptLine = 0
    }

    static func isCapabilityOffset(_ offset: UInt8) -> Bool { offset >= 0x40 && offset % 4 == 0 }

    /// Every entry's ID and next pointer inside `bytes`, dword aligned, and no entry visited twice.
    static func checkChain(from pointer: UInt8, in bytes: [UInt8]) throws(PCIRegistrationError) {
        var offset = pointer
        var visited = Set<UInt8>()
        while offset != 0 {
            guard isCapabilityOffset(offset), Int(offset) - 0x40 + 2 <= bytes.count else {
                throw .invalid("capability at \(hex(offset)) is not a dword inside the \(bytes.count) capability bytes from 0x40")
            }
            guard visited.insert(offset).inserted, visited.count <= maxCapabilities else {
                throw .invalid("capability list loops back to \(hex(offset))")
            }
            offset = bytes[Int(offset) - 0x40 + 1]
        }
    }

    /// Power-on state: decoding off, BARs unassigned.
    mutating func reset() {
        command = resetCommand
        cacheLineSize = 0
        latencyTimer = 0
        interruptLine = resetInterruptLine
        for i in bars.indices { bars[i]?.clear() }
    }

    /// Dword `index` (0-15) of the header.
    func readDword(_ index: Int) -> UInt32 {
        switch index {
        case 0: return UInt32(deviceID) << 16 | UInt32(vendorID)
        case 1:
            let status: UInt16 = capabilityPointer != 0 ? Self.capabilitiesListStatus : 0
            return UInt32(status) << 16 | UInt32(command)
        case 2: return classCode << 8 | UInt32(revision)
        case 3: return UInt32(latencyTimer) << 8 | UInt32(cacheLineSize)  // header type 0, BIST 0
        case 4..<10:
            let slot = index - 4
            if let bar = bars[slot] { return bar.lowRegister }
            if slot > 0, let lower = bars[slot - 1], lower.space == .memory64 { return lower.highRegister }
            return 0
        case 11: return UInt32(subsystemID) << 16 | UInt32(subsystemVendorID)
        case 13: return UInt32(capabilityPointer)
        case 15: return UInt32(interruptPin) << 8 | UInt32(interruptLine)  // Min_Gnt, Max_Lat 0
        default: return 0  // CardBus CIS, expansion ROM (none), reserved
        }
    }

    /// Applies a guest write to the bytes of dword `index` that `byteMask` selects (0xFF per byte).
    /// Returns whether what the function decodes may have changed (command or a BAR).
    mutating func writeDword(_ index: Int, _ value: UInt32, byteMask: UInt32) -> Bool {
        let merged = (readDword(index) & ~byteMask) | (value & byteMask)
        switch index {
        case 1:
            // Status (the upper half) has only read-only and write-1-to-clear bits the core never sets.
            guard byteMask & 0xFFFF != 0 else { return false }
            let old = command
            command = UInt16(truncatingIfNeeded: merged) & Self.writableCommand
            return command != old
        case 3:
            cacheLineSize = UInt8(truncatingIfNeeded: merged)
            latencyTimer = UInt8(truncatingIfNeeded: merged >> 8)
            return false
        case 4..<10:
            let slot = index - 4
            if bars[slot] != nil {
                bars[slot]?.writeLow(merged)
                return true
            }
            if slot > 0, bars[slot - 1]?.space == .memory64 {
                bars[slot - 1]?.writeHigh(merged)
                return true
            }
            return false
        case 15:
            interruptLine = UInt8(truncatingIfNeeded: merged)
            return false
        default:
            return false
        }
    }

    /// Where BAR `slot` should decode now: enabled in the command register and reachable.
    func decodeWindow(slot: Int) -> PCIWindow? {
        guard let bar = bars[slot] else { return nil }
        let enable = bar.isIO ? Self.ioSpaceEnable : Self.memorySpaceEnable
        guard command & enable != 0 else { return nil }
        return bar.window
    }

    /// A read's value from 0x40 on before the plugin sees it: the capability bytes, zero past them.
    func presetValue(offset: UInt32, size: UInt32) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<size {
            let index = Int(offset + i) - Int(Self.headerBytes)
            if index >= 0, index < capabilities.count { value |= UInt32(capabilities[index]) << (8 * i) }
        }
        return value
    }
}
