/// The device list checked and sorted by kind, so the table builders can ask "is there a keyboard?"
/// without re-validating. Duplicates of single-instance devices, lines beyond the IOAPIC's pins
/// and port ranges past 0xFFFF are refused here, before any table is built.
struct ACPIDeviceSet: Equatable {
    struct Serial: Equatable { var port: UInt16; var irq: UInt8 }
    struct PIT: Equatable { var port: UInt16; var irq: UInt8 }
    struct Keyboard: Equatable { var keyboardIRQ: UInt8; var mouseIRQ: UInt8 }

    static let maxSerialPorts = 9 // COM1-COM9: one digit in the name segment

    private(set) var serials: [Serial] = []
    private(set) var rtcIRQ: UInt8?
    private(set) var pit: PIT?
    private(set) var keyboard: Keyboard?
    private(set) var powerManagement: PowerManagementBlocks?
    private(set) var vmbus = false
    private(set) var systemBusTerms: [AMLTerm] = []

    /// Any legacy ISA device present: the FADT's LEGACY_DEVICES flag.
    var hasLegacyDevices: Bool { !serials.isEmpty || rtcIRQ != nil || pit != nil || keyboard != nil }

    init(_ devices: [ACPIDevice]) throws(FirmwareError) {
        func line(_ irq: UInt8, _ what: String) throws(FirmwareError) {
            guard Int(irq) < InterruptRouting.ioapicPins else {
                throw .invalidDevice("\(what) IRQ \(irq) is beyond the IOAPIC's \(InterruptRouting.ioapicPins) pins")
            }
        }
        func ports(_ base: UInt16, _ count: UInt16, _ what: String) throws(FirmwareError) {
            guard base <= UInt16.max - (count - 1) else {
                throw .invalidDevice("\(what) ports \(hex(base))+\(count) run past 0xffff")
            }
        }
        func once(_ present: Bool, _ what: String) throws(FirmwareError) {
            guard !present else { throw .invalidDevice("more than one \(what)") }
        }
        for device in devices {
            switch device {
            case .serial(let port, let irq):
                guard serials.count < Self.maxSerialPorts else { throw .invalidDevice("more than \(Self.maxSerialPorts) serial ports") }
                try ports(port, 8, "serial")
                try line(irq, "serial")
                serials.append(Serial(port: port, irq: irq))
            case .rtc(let irq):
                try once(rtcIRQ != nil, "RTC")
                try line(irq, "RTC")
                rtcIRQ = irq
            case .pit(let port, let irq):
                try once(pit != nil, "PIT")
                try ports(port, 4, "PIT")
                try line(irq, "PIT")
                pit = PIT(port: port, irq: irq)
            case .keyboard(let keyboardIRQ, let mouseIRQ):
                try once(keyboard != nil, "i8042 keyboard controller")
                try line(keyboardIRQ, "keyboard")
                try line(mouseIRQ, "mouse")
                keyboard = Keyboard(keyboardIRQ: keyboardIRQ, mouseIRQ: mouseIRQ)
            case .powerManagement(let blocks):
                try once(powerManagement != nil, "ACPI power-management device")
                try ports(blocks.pm1aEvent, UInt16(PowerManagementBlocks.pm1EventLength), "PM1a event")
                try ports(blocks.pm1aControl, UInt16(PowerManagementBlocks.pm1ControlLength), "PM1a control")
                try ports(blocks.timer, UInt16(PowerManagementBlocks.timerLength), "PM timer")
                try ports(blocks.gpe0, UInt16(PowerManagementBlocks.gpe0Length), "GPE0")
                try line(blocks.sciIRQ, "SCI")
                guard blocks.s5SleepType <= 7 else { throw .invalidDevice("S5 SLP_TYP \(blocks.s5SleepType) is not 3 bits") }
                powerManagement = blocks
            case .vmbus:
                try once(vmbus, "VMBus")
                vmbus = true
            case .systemBusTerms(let terms):
                systemBusTerms += terms
            }
        }
    }
}
