import Synchronization
import VeneerPluginABI

/// Interrupt delivery into the in-kernel irqchip (PIC + IOAPIC + LAPICs).
///
/// Lines are shared the way ISA/PCI wiring shares them: the line's level is the OR of what every
/// source drives, and KVM is told only about changes, so a device re-asserting a level costs no ioctl.
public final class InterruptController: Sendable {
    /// GSIs of the in-kernel IOAPIC (0-15 also reach the PIC).
    public static let lineCount: UInt32 = 24

    private let vm: VirtualMachineFD
    private let asserted = Mutex([Set<ObjectIdentifier>](repeating: [], count: Int(lineCount)))

    public init(vm: VirtualMachineFD) { self.vm = vm }

    public func setLine(_ line: UInt32, level: Bool, source: ObjectIdentifier) -> veneer_status {
        guard line < Self.lineCount else { return .invalid }
        let change: Bool? = asserted.withLock { sets in
            let wasHigh = !sets[Int(line)].isEmpty
            if level { sets[Int(line)].insert(source) } else { sets[Int(line)].remove(source) }
            let isHigh = !sets[Int(line)].isEmpty
            return wasHigh == isHigh ? nil : isHigh
        }
        guard let change else { return .ok }
        do { try vm.setIRQLine(line, level: change) } catch { return .ioError }
        return .ok
    }

    /// x86 MSI: the address must be in the LAPIC window 0xFEExxxxx.
    public func sendMSI(address: UInt64, data: UInt32) -> veneer_status {
        guard address & 0xFFF0_0000 == 0xFEE0_0000, address >> 32 == 0 else { return .invalid }
        do { try vm.signalMSI(address: address, data: data) } catch { return .ioError }
        return .ok
    }
}
