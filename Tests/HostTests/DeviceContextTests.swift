import Testing
import CKVM
@testable import VeneerHost
#if canImport(Glibc)
import Glibc
#endif

/// The VMM's host services refuse hostile plugin input instead of trapping.
@Suite(.enabled(if: KVMSystem.isAvailable(), "SKIPPED: /dev/kvm is not available on this machine"))
struct DeviceContextTests {
    @Test func doorbellsRefuseOverflowingAndMisplacedAddresses() throws {
        let vm = try KVMSystem().createVM()
        try vm.createIRQChip()
        let memory = try GuestMemory(map: try MemoryMap.pc(ramBytes: 16 << 20))
        let stop = try StopController()
        let services = MachineServices(vm: vm, memory: memory, ports: PortIOBus(), mmio: MMIOBus(),
                                       interrupts: InterruptController(vm: vm), events: try EventLoop(stop: stop),
                                       stop: stop, hyperv: nil, logger: Logger(threshold: .error))
        let context = DeviceContext(id: "bell", machine: services)
        let fd = ckvm_eventfd(0)
        defer { close(fd) }
        #expect(context.ioeventAdd(mmio: false, address: .max, length: 4, fd: fd) == .invalid, "port past 0xffff, overflowing")
        #expect(context.ioeventAdd(mmio: false, address: 0xfffe, length: 4, fd: fd) == .invalid, "port range runs past 0xffff")
        #expect(context.ioeventAdd(mmio: true, address: .max - 1, length: 8, fd: fd) == .invalid, "MMIO range wraps")
        #expect(context.ioeventAdd(mmio: true, address: 0x1000, length: 4, fd: fd) == .invalid, "MMIO inside guest RAM")
        #expect(context.ioeventAdd(mmio: false, address: 0x5f0, length: 3, fd: fd) == .invalid, "odd length")
        #expect(context.ioeventAdd(mmio: false, address: 0x5f0, length: 4, fd: fd) == .ok)
        #expect(context.ioeventAdd(mmio: true, address: 0xd000_0000, length: 4, fd: fd) == .ok)
    }
}
