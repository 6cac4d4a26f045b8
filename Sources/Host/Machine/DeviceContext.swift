import VeneerPluginABI

/// The VMM's `DeviceHost` for one device instance: the machine's buses, memory, interrupts and
/// event loop, seen through that instance.
final class DeviceContext: DeviceHost, @unchecked Sendable {
    // @unchecked: `device` is set once, right after creation and before any callback can run.
    let id: String
    let machine: MachineServices
    weak var device: PluginDevice?

    init(id: String, machine: MachineServices) {
        self.id = id
        self.machine = machine
    }

    private var source: ObjectIdentifier { ObjectIdentifier(self) }

    func log(level: UInt32, message: String) {
        machine.logger.log(Logger.Level(rawValue: min(level, 3)) ?? .debug, id, message)
    }

    func setError(_ message: String) {
        device?.noteError(message)
        machine.logger.log(.debug, id, "error: \(message)")
    }

    /// Buses are read lock-free by vCPUs, so they change only while no vCPU runs.
    private func regionsMayChange() -> Bool {
        guard !machine.vcpusRunning else {
            machine.logger.log(.error, id, "address regions can only change while the VM is not running")
            return false
        }
        return true
    }

    func registerPortIO(region: UInt32, port: UInt16, length: UInt32) -> veneer_status {
        guard let device, regionsMayChange() else { return .busy }
        let status = machine.ports.register(device: device, region: region, port: port, length: length)
        if status == .busy {
            let last = min(UInt32(port) + length, 0x10000)
            let owner = (UInt32(port)..<last).lazy.compactMap { self.machine.ports.owner(of: UInt16($0)) }.first
            setError("ports \(hex(port))+\(length) overlap device '\(owner?.device ?? "?")'")
        }
        return status
    }

    func registerMMIO(region: UInt32, address: UInt64, length: UInt64) -> veneer_status {
        guard let device, regionsMayChange() else { return .busy }
        guard length > 0, address <= UInt64.max - length else { return .invalid }
        if let backed = machine.memory.map.regions.first(where: { $0.kind != .mmio && $0.start < address + length && address < $0.end }) {
            setError("MMIO \(hex(address))+\(hex(length)) overlaps guest memory region \(backed.name)")
            return .busy
        }
        let status = machine.mmio.register(device: device, region: region, address: address, length: length)
        if status == .busy { setError("MMIO \(hex(address))+\(hex(length)) overlaps another device") }
        return status
    }

    func unregisterRegion(_ region: UInt32) -> veneer_status {
        guard let device, regionsMayChange() else { return .busy }
        let removed = machine.ports.unregister(device: device, region: region) || machine.mmio.unregister(device: device, region: region)
        return removed ? .ok : .invalid
    }

    func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> veneer_status {
        do { try machine.memory.read(address, into: buffer); return .ok } catch { return .outOfRange }
    }

    func writeGuest(_ address: UInt64, from buffer: UnsafeRawBufferPointer) -> veneer_status {
        do { try machine.memory.write(address, from: buffer); return .ok } catch { return .outOfRange }
    }

    func mapGuest(_ address: UInt64, length: UInt64, writable: Bool) -> UnsafeMutableRawPointer? {
        guard let p = machine.memory.pointer(address, length: length, writable: writable) else {
            machine.logger.log(.warning, id, "refused to map guest range \(hex(address))+\(hex(length)): not inside guest RAM")
            return nil
        }
        return p
    }

    func setIRQ(line: UInt32, level: Bool) -> veneer_status {
        machine.interrupts.setLine(line, level: level, source: source)
    }

    func sendMSI(address: UInt64, data: UInt32) -> veneer_status {
        machine.interrupts.sendMSI(address: address, data: data)
    }

    func clockNanoseconds() -> UInt64 { EventLoop.now() }

    func armTimer(token: UInt64, deadline: UInt64, period: UInt64) -> veneer_status {
        guard let device else { return .invalid }
        return machine.events.armTimer(device, token: token, deadline: deadline, period: period)
    }

    func cancelTimer(token: UInt64) -> veneer_status {
        guard let device else { return .invalid }
        return machine.events.cancelTimer(device, token: token)
    }

    func watch(fd: Int32, events: UInt32, token: UInt64) -> veneer_status {
        guard let device else { return .invalid }
        return machine.events.watch(device, fd: fd, events: events, token: token)
    }

    func unwatch(fd: Int32) -> veneer_status {
        guard let device else { return .invalid }
        return machine.events.unwatch(device, fd: fd)
    }

    func postWork(token: UInt64) -> veneer_status {
        guard let device else { return .invalid }
        return machine.events.post(device, token: token)
    }

    func requestStop(reason: UInt32, exitStatus: Int32) {
        switch reason {
        case VENEER_STOP_POWEROFF.rawValue: machine.stop.request(.powerOff)
        case VENEER_STOP_RESET.rawValue: machine.stop.request(.reset)
        case VENEER_STOP_EXIT.rawValue: machine.stop.request(.guestExit(exitStatus))
        default:
            let message = device.map { _ in "device '\(id)' failed" } ?? "device '\(id)' failed"
            machine.stop.request(.deviceError(message))
        }
    }
}
