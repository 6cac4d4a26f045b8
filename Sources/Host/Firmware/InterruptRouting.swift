/// How interrupt lines reach the in-kernel IOAPIC. The MADT and the MP table both take their
/// answers from here, so they always tell the guest the same wiring.
///
/// Veneer keeps KVM's default GSI routing (KVM_CREATE_IRQCHIP installs it in arch/x86/kvm/irq.c's
/// `default_routing`; Veneer never calls KVM_SET_GSI_ROUTING): GSI n drives IOAPIC pin n and, for
/// n < 16, PIC pin n % 8. A plugin's line n is KVM_IRQ_LINE n, so ISA IRQ n arrives at IOAPIC pin
/// n. That includes IRQ 0, which real chipsets (and QEMU, which installs its own routing) wire to
/// pin 2 and announce with an IRQ 0 -> GSI 2 override; declaring that here would send the guest's
/// timer interrupt to a pin nothing drives. So ISA IRQs are identity-mapped, and the only override
/// is the SCI's: level-triggered and active-high, because acpi-pm drives the line's logical level.
struct InterruptRouting: Equatable {
    static let ioapicAddress: UInt32 = 0xFEC0_0000
    static let localAPICAddress: UInt32 = 0xFEE0_0000
    static let ioapicPins = 24
    static let isaIRQCount: UInt8 = 16
    /// KVM's IOAPIC version register (arch/x86/kvm/ioapic.h, IOAPIC_VERSION_ID).
    static let ioapicVersion: UInt8 = 0x11
    /// KVM's local APIC version register (arch/x86/kvm/lapic.c, APIC_VERSION).
    static let localAPICVersion: UInt8 = 0x14

    /// The SCI line, when ACPI power management exists.
    let sciIRQ: UInt8?

    /// MPS INTI flags (also the MADT's): bits 1-0 polarity, bits 3-2 trigger mode; 0 conforms to the bus.
    struct Flags: Equatable {
        let rawValue: UInt16
        static let conforming = Flags(rawValue: 0)
        /// Polarity 01 (active high), trigger 11 (level).
        static let levelActiveHigh = Flags(rawValue: 0b11_01)
    }

    struct Override: Equatable {
        let source: UInt8
        let gsi: UInt32
        let flags: Flags
    }

    func ioapicPin(forISAIRQ irq: UInt8) -> UInt8 { irq }

    func flags(forISAIRQ irq: UInt8) -> Flags { irq == sciIRQ ? .levelActiveHigh : .conforming }

    /// The MADT's Interrupt Source Overrides: every ISA IRQ whose pin or flags differ from the ISA
    /// default (same pin, edge, active high), plus the SCI even above 15, where only an override
    /// can say it is active-high (an OS otherwise assumes a level, active-low SCI there).
    var overrides: [Override] {
        var result: [Override] = []
        for irq in 0..<Self.isaIRQCount where ioapicPin(forISAIRQ: irq) != irq || flags(forISAIRQ: irq) != .conforming {
            result.append(Override(source: irq, gsi: UInt32(ioapicPin(forISAIRQ: irq)), flags: flags(forISAIRQ: irq)))
        }
        if let sci = sciIRQ, sci >= Self.isaIRQCount {
            result.append(Override(source: sci, gsi: UInt32(sci), flags: .levelActiveHigh))
        }
        return result
    }
}
