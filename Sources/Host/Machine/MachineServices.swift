import Synchronization

/// What device contexts share: the pieces of one VM that devices reach through host services.
final class MachineServices: Sendable {
    let memory: GuestMemory
    let ports: PortIOBus
    let mmio: MMIOBus
    /// PCI bus 0: the host bridge and the functions devices register.
    let pci: PCIBus
    let interrupts: InterruptController
    let events: EventLoop
    let stop: StopController
    let logger: Logger
    let vm: VirtualMachineFD
    /// The Hyper-V partition interface, when the VM is enlightened.
    let hyperv: HyperVPartition?
    private let running = Atomic<Bool>(false)
    /// What devices may learn about the machine; nil until the machine is built.
    let facts = Mutex<MachineFacts?>(nil)

    init(vm: VirtualMachineFD, memory: GuestMemory, ports: PortIOBus, mmio: MMIOBus, interrupts: InterruptController,
         events: EventLoop, stop: StopController, hyperv: HyperVPartition?, logger: Logger) {
        pci = PCIBus { [logger] message in logger.log(.warning, "pci", message) }
        self.vm = vm
        self.hyperv = hyperv
        self.memory = memory
        self.ports = ports
        self.mmio = mmio
        self.interrupts = interrupts
        self.events = events
        self.stop = stop
        self.logger = logger
    }

    var vcpusRunning: Bool {
        get { running.load(ordering: .acquiring) }
        set { running.store(newValue, ordering: .releasing) }
    }
}
