import VeneerPluginKit

/// A small PCI function for tests: one register file behind three BARs, a capability, a
/// device-specific configuration register and INTA#.
///
///   BAR0  32-bit memory, 4 KiB (region 0)      all three show the registers below; offsets past
///   BAR1  I/O, 32 ports (region 1)             them read 0 and ignore writes
///   BAR2  64-bit prefetchable memory, 4 KiB (region 2, BAR3 is its upper half)
///
///   offset  register      access
///   0x00    ID            RO   0x49435056, the bytes "VPCI"
///   0x04    SCRATCH       RW   32 free bits (narrow writes replace only their bytes)
///   0x08    WRITE_COUNT   RO   guest writes through any BAR so far
///   0x0C    IRQ           RW   bit 0 asserts INTA# (the `irq` line) unless the command
///                              register's interrupt disable bit is set; reads the bit
///   0x10    BAR           RO   which BAR this read came through (0, 1 or 2)
///   0x14    COMMAND       RO   the command register as the core last reported a write to it
///
/// Configuration space from 0x40: a vendor-specific capability (ID 0x09, 8 bytes: "VNR" and a
/// version byte 1), then at 0x48 CONFIG_SCRATCH, a read/write dword the plugin itself answers.
/// Registers are 32 bits; an access at a register's offset sees its low `size` bytes.
final class PCITestDevice: VeneerDevice {
    static let id: UInt32 = 0x4943_5056
    static let registerBytes: UInt64 = 0x18
    static let configScratchOffset: UInt32 = 0x48
    static let interruptDisable: UInt16 = 0x400

    enum Register {
        static let id: UInt64 = 0x00
        static let scratch: UInt64 = 0x04
        static let writeCount: UInt64 = 0x08
        static let irq: UInt64 = 0x0C
        static let bar: UInt64 = 0x10
        static let command: UInt64 = 0x14
    }

    static func function(vendorID: UInt16, deviceID: UInt16, irq: UInt8, slot: UInt8?) -> PCIFunction {
        PCIFunction(
            vendorID: vendorID, deviceID: deviceID, classCode: 0xFF_0000, revision: 1,
            interruptPin: .a, interruptLine: irq, slot: slot,
            bars: [.memory32(size: 4096, region: 0), .io(size: 32, region: 1), .memory64(size: 4096, region: 2, prefetchable: true)],
            capabilities: [PCIFunction.Capability(id: 0x09, body: [8, UInt8(ascii: "V"), UInt8(ascii: "N"), UInt8(ascii: "R"), 1, 0])])
    }

    let host: HostServices
    let irqLine: UInt32
    let function: UInt32
    private var scratch: UInt32 = 0
    private var writeCount: UInt32 = 0
    private var irqBit = false
    private var command: UInt16 = 0
    private var configScratch: UInt32 = 0
    /// The level INTA# was last driven to.
    private var level = false

    init(host: HostServices, vendorID: UInt16, deviceID: UInt16, irq: UInt8, slot: UInt8?) throws(PluginError) {
        self.host = host
        irqLine = UInt32(irq)
        function = try host.registerPCIFunction(Self.function(vendorID: vendorID, deviceID: deviceID, irq: irq, slot: slot))
    }

    func reset() {
        scratch = 0
        writeCount = 0
        irqBit = false
        command = 0
        configScratch = 0
        updateIRQ()
    }

    private func updateIRQ() {
        let wanted = irqBit && command & Self.interruptDisable == 0
        guard wanted != level else { return }
        level = wanted
        host.setIRQ(line: irqLine, level: wanted)
    }

    func io(_ access: IOAccess, data: inout UInt64) {
        let mask = access.mask & 0xFFFF_FFFF
        if access.isWrite {
            writeCount &+= 1
            let value = UInt32(truncatingIfNeeded: data & mask)
            switch access.offset {
            case Register.scratch: scratch = (scratch & ~UInt32(truncatingIfNeeded: mask)) | value
            case Register.irq:
                irqBit = value & 1 != 0
                updateIRQ()
            default: break
            }
            return
        }
        let value: UInt32 = switch access.offset {
        case Register.id: Self.id
        case Register.scratch: scratch
        case Register.writeCount: writeCount
        case Register.irq: irqBit ? 1 : 0
        case Register.bar: access.region
        case Register.command: UInt32(command)
        default: 0
        }
        data = UInt64(value) & mask
    }

    func pciConfig(_ access: PCIConfigAccess, data: inout UInt32) {
        guard access.function == function else { return }
        if access.isHeaderUpdate {
            // The command register is the header's low word: note it for interrupt disable.
            if access.offset == 0x04, access.size >= 2 { command = UInt16(truncatingIfNeeded: data) }
            if access.offset == 0x04, access.size == 1 { command = (command & 0xFF00) | UInt16(data & 0xFF) }
            if access.offset == 0x05, access.size == 1 { command = (command & 0x00FF) | UInt16(data & 0xFF) << 8 }
            updateIRQ()
            return
        }
        guard access.touches(Self.configScratchOffset, count: 4) else { return }
        let shift = 8 * (access.offset - Self.configScratchOffset)
        let mask: UInt32 = access.size >= 4 ? .max : (1 << (8 * UInt32(access.size))) - 1
        if access.isWrite {
            configScratch = (configScratch & ~(mask << shift)) | ((data & mask) << shift)
        } else {
            data = (configScratch >> shift) & mask
        }
    }

    func save(to state: inout StateWriter) {
        state.write(scratch)
        state.write(writeCount)
        state.write(irqBit)
        state.write(command)
        state.write(configScratch)
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("unknown state version \(version)") }
        let scratch: UInt32 = try state.read()
        let writeCount: UInt32 = try state.read()
        let irqBit = try state.readBool()
        let command: UInt16 = try state.read()
        let configScratch: UInt32 = try state.read()
        try state.finish()
        self.scratch = scratch
        self.writeCount = writeCount
        self.irqBit = irqBit
        self.command = command
        self.configScratch = configScratch
        updateIRQ()
    }
}
