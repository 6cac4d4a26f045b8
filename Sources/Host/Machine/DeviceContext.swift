import Synchronization
import VMBusProtocol
import VeneerPluginABI
#if canImport(Glibc)
import Glibc
#endif

/// The VMM's `DeviceHost` for one device instance: the machine's buses, memory, interrupts and
/// event loop, seen through that instance.
final class DeviceContext: DeviceHost, @unchecked Sendable {
    // @unchecked: `device` is set once, right after creation and before any callback can run.
    let id: String
    let machine: MachineServices
    weak var device: PluginDevice?
    /// The channels this device offered, by the id the plugin knows them by (their relid).
    private let channels = Mutex<[UInt32: VMBusChannel]>([:])
    /// Region ids of the BARs of the PCI functions this device registered.
    private let pciRegions = Mutex<Set<UInt32>>([])
    /// Whether this device has been accepted as a PCI configuration mechanism.
    private let configMechanism = Atomic<Bool>(false)

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

    /// Region ids of this instance's PCI BARs: the bus places and removes those, not the plugin.
    private func isBARRegion(_ region: UInt32) -> Bool {
        guard pciRegions.withLock({ $0.contains(region) }) else { return false }
        setError("region \(region) belongs to a PCI BAR, which the guest places")
        return true
    }

    /// The guest memory (RAM or ROM) that [address, address + length) overlaps, if any.
    private func backedMemory(overlapping address: UInt64, length: UInt64) -> MemoryMap.Region? {
        machine.memory.map.regions.first { $0.kind != .mmio && $0.start < address + length && address < $0.end }
    }

    // Regions may change while vCPUs run: the buses take their write locks (see PortIOBus).

    func registerPortIO(region: UInt32, port: UInt16, length: UInt32) -> veneer_status {
        guard let device else { return .busy }
        guard !isBARRegion(region) else { return .invalid }
        let status = machine.ports.register(device: device, region: region, port: port, length: length)
        if status == .busy {
            let last = min(UInt32(port) + length, 0x10000)
            let owner = (UInt32(port)..<last).lazy.compactMap { self.machine.ports.owner(of: UInt16($0)) }.first
            setError("ports \(hex(port))+\(length) overlap device '\(owner?.device ?? "?")'")
        }
        return status
    }

    func registerMMIO(region: UInt32, address: UInt64, length: UInt64) -> veneer_status {
        guard let device else { return .busy }
        guard length > 0, address <= UInt64.max - length else { return .invalid }
        guard !isBARRegion(region) else { return .invalid }
        if let backed = backedMemory(overlapping: address, length: length) {
            setError("MMIO \(hex(address))+\(hex(length)) overlaps guest memory region \(backed.name)")
            return .busy
        }
        let status = machine.mmio.register(device: device, region: region, address: address, length: length)
        if status == .busy { setError("MMIO \(hex(address))+\(hex(length)) overlaps another device") }
        return status
    }

    func unregisterRegion(_ region: UInt32) -> veneer_status {
        guard let device else { return .busy }
        guard !isBARRegion(region) else { return .invalid }
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
            let reason = device?.takeErrorReport().map { ": \($0)" } ?? ""
            machine.stop.request(.deviceError("device '\(id)' failed\(reason)"))
        }
    }

    // MARK: ABI 1.1 VMBus

    func vmbusOffer(_ offer: VMBusOfferRequest) -> (veneer_status, channel: UInt32) {
        guard let device else { return (.invalid, 0) }
        guard let hyperv = machine.hyperv else {
            setError("VMBus channels need an enlightened VM (hyperv = true)")
            return (.unsupported, 0)
        }
        // Also valid while the VM runs (ABI 1.7, hot add): a connected guest sees the offer at once.
        guard let type = try? GUID.decode(offer.interfaceType), let instance = try? GUID.decode(offer.interfaceInstance) else {
            return (.invalid, 0)
        }
        let request = ChannelOffer(interfaceType: type, interfaceInstance: instance, channelFlags: offer.channelFlags,
                                   mmioMegabytes: offer.mmioMegabytes, userDefined: offer.userDefined)
        do {
            let channel = try hyperv.register(offer: request, handler: PluginChannelHandler(device: device, events: machine.events))
            channels.withLock { $0[channel.relid] = channel }
            return (.ok, channel.relid)
        } catch {
            setError("\(error)")
            return (.busy, 0)
        }
    }

    /// The instance's channel `id`, unless the host has withdrawn it (then it is forgotten: its
    /// relid may already name another device's channel).
    private func channel(_ id: UInt32) -> VMBusChannel? {
        channels.withLock { map in
            guard let channel = map[id] else { return nil }
            guard !channel.isRetired else {
                map[id] = nil
                return nil
            }
            return channel
        }
    }

    private static func status(_ error: ChannelError) -> veneer_status {
        switch error {
        case .notOpen: .invalid
        default: .ioError
        }
    }

    func vmbusRead(channel id: UInt32, into buffer: UnsafeMutableRawBufferPointer) -> (veneer_status, VMBusReadResult?) {
        guard let channel = channel(id) else { return (.invalid, nil) }
        do {
            guard let packet = try channel.peekPacket() else { return (veneer_status(VENEER_EAGAIN), nil) }
            let header = packet.pluginHeader
            let result = VMBusReadResult(type: packet.descriptor.type, flags: packet.descriptor.flags,
                                         transactionID: packet.transactionID,
                                         headerLength: header.count, payloadLength: packet.payload.count)
            guard header.count + packet.payload.count <= buffer.count, let base = buffer.baseAddress else {
                return (header.count + packet.payload.count == 0 ? .ok : veneer_status(VENEER_ENOSPC), result)
            }
            header.withUnsafeBytes { if let h = $0.baseAddress { memcpy(base, h, header.count) } }
            packet.payload.withUnsafeBytes { if let p = $0.baseAddress { memcpy(base + header.count, p, packet.payload.count) } }
            try channel.advance(past: packet)
            return (.ok, result)
        } catch {
            return (Self.status(error), nil)
        }
    }

    func vmbusWrite(channel id: UInt32, type: UInt16, flags: UInt16, transactionID: UInt64, data: UnsafeRawBufferPointer) -> veneer_status {
        guard let channel = channel(id) else { return .invalid }
        do {
            switch try channel.writePacket(type: type, flags: flags, transactionID: transactionID, payload: Array(data)) {
            case .written: return .ok
            case .full: return veneer_status(VENEER_ENOSPC)
            }
        } catch {
            return Self.status(error)
        }
    }

    // MARK: ABI 1.7 VMBus channels of storage- and network-class VSPs

    func vmbusRescind(channel id: UInt32) -> veneer_status {
        guard let hyperv = machine.hyperv, let channel = channel(id) else { return .invalid }
        guard !channel.isSubchannel else {
            setError("channel \(id) is a sub-channel: it goes with its primary")
            return .invalid
        }
        hyperv.unregister(channel)
        channels.withLock { map in map = map.filter { !$0.value.isRetired } }
        machine.logger.log(.info, self.id, "VMBus channel \(id) rescinded")
        return .ok
    }

    func vmbusOfferSubchannels(primary id: UInt32, count: Int) -> (veneer_status, [UInt32]) {
        guard let device, let hyperv = machine.hyperv, let primary = channel(id), !primary.isSubchannel else {
            setError("channel \(id) is not a primary channel of this device")
            return (.invalid, [])
        }
        do throws(SubchannelOfferError) {
            let subs = try hyperv.registerSubchannels(of: primary, count: count,
                                                      handler: PluginChannelHandler(device: device, events: machine.events))
            channels.withLock { map in
                map = map.filter { !$0.value.isRetired }
                for sub in subs { map[sub.relid] = sub }
            }
            return (.ok, subs.map(\.relid))
        } catch {
            setError("sub-channels of channel \(id): \(error)")
            switch error {
            case .refused(.notAnOpenPrimary): return (.invalid, [])
            case .refused: return (.noSpace, [])
            case .system: return (.ioError, [])
            }
        }
    }

    func vmbusReadSegments(channel id: UInt32, into buffer: UnsafeMutableRawBufferPointer, segmentCapacity: Int) -> VMBusSegmentedRead {
        guard let channel = channel(id) else { return VMBusSegmentedRead(status: .invalid) }
        do {
            guard let packet = try channel.peekPacket() else { return VMBusSegmentedRead(status: .again) }
            var segments: [VMBusSegment]? = nil
            if case .gpaDirect(let ranges) = packet.kind {
                // The reader checked every page is RAM; the segments are built from those ranges.
                guard let built = VMBusSegment.segments(of: ranges, memory: machine.memory) else {
                    return VMBusSegmentedRead(status: .ioError)
                }
                segments = built
            }
            let read = VMBusSegmentedRead.deliver(type: packet.descriptor.type, flags: packet.descriptor.flags,
                                                  transactionID: packet.transactionID, header: packet.pluginHeader,
                                                  payload: packet.payload, segments: segments, into: buffer,
                                                  segmentCapacity: segmentCapacity)
            if read.status == .ok { try channel.advance(past: packet) }
            return read
        } catch {
            return VMBusSegmentedRead(status: Self.status(error))
        }
    }

    func vmbusGPADLSegments(channel id: UInt32, gpadl: UInt32) -> (veneer_status, [VMBusSegment]) {
        guard let hyperv = machine.hyperv, let channel = channel(id),
              let segments = hyperv.vmbus.gpadlSegments(channel: channel, gpadl: gpadl)
        else { return (.invalid, []) }
        return (.ok, segments)
    }

    // ABI 1.8: metrics and management requests.
    let metrics = DeviceMetrics()
    let controlRequests = ControlRequestTable()

    func metricRegister(name: String, help: String, kind: UInt32) -> (veneer_status, UInt32) {
        metrics.register(name: name, help: help, kind: kind)
    }

    func metricAdd(_ metric: UInt32, delta: UInt64) { metrics.add(metric, delta: delta) }

    func metricSet(_ metric: UInt32, value: Int64) { metrics.set(metric, value: value) }

    func controlReply(request: UInt64, status: veneer_status, text: String) -> veneer_status {
        controlRequests.answer(request, status: status, text: text)
    }

    func vmbusWriteBatch(channel id: UInt32, packets: [OutgoingRingPacket]) -> (veneer_status, written: Int) {
        guard let channel = channel(id) else { return (.invalid, 0) }
        do {
            let written = try channel.writeBatch(packets)
            return (written == packets.count ? .ok : .noSpace, written)
        } catch {
            switch error {
            case .invalidPacket, .packetTooLarge: return (.invalid, 0)
            default: return (Self.status(error), 0)
            }
        }
    }

    func ioeventAdd(mmio: Bool, address: UInt64, length: UInt32, fd: Int32) -> veneer_status {
        guard [1, 2, 4, 8].contains(length), fd >= 0, !machine.vcpusRunning else { return .invalid }
        if !mmio {
            guard address <= 0x10000 - UInt64(length) else { return .invalid }   // no overflow on hostile input
            let port = UInt16(address)
            if (0..<UInt16(length)).contains(where: { machine.ports.owner(of: port &+ $0) != nil }) {
                setError("doorbell port \(hex(port)) overlaps a device's ports")
                return .busy
            }
        } else if address > UInt64.max - UInt64(length)
                    || machine.memory.map.regions.contains(where: { $0.kind != .mmio && $0.start < address + UInt64(length) && address < $0.end }) {
            setError("doorbell address \(hex(address)) is not in an MMIO hole")
            return .invalid
        } else if machine.mmio.owner(of: address) != nil {
            setError("doorbell address \(hex(address)) overlaps a device's MMIO region")
            return .busy
        }
        do {
            try machine.vm.addIOEventFD(fd, address: address, length: length, isPIO: !mmio, value: nil)
            return .ok
        } catch {
            setError("\(error)")
            return .ioError
        }
    }
}

// MARK: ABI 1.2 PCI

extension DeviceContext: PCIFunctionOwner {
    func pciRegister(_ function: PCIFunctionRequest) -> (veneer_status, handle: UInt32) {
        guard device != nil else { return (.invalid, 0) }
        guard !machine.vcpusRunning else {
            setError("PCI functions can only be registered while the VM is being created")
            return (.busy, 0)
        }
        do {
            let bdf = try machine.pci.register(function, owner: self)
            pciRegions.withLock { regions in
                for bar in function.bars where bar.size != 0 { regions.insert(bar.region) }
            }
            machine.logger.log(.info, id, "PCI function \(PCIBus.name(bdf)): \(hex(function.vendorID)):\(hex(function.deviceID)) class \(hex(function.classCode))")
            return (.ok, bdf)
        } catch {
            setError("PCI function \(hex(function.vendorID)):\(hex(function.deviceID)): \(error.reason)")
            return (error.status, 0)
        }
    }

    func pciConfigAccess(bdf: UInt32, offset: UInt32, size: UInt32, isWrite: Bool, data: inout UInt32) -> veneer_status {
        if !configMechanism.load(ordering: .relaxed) {
            guard machine.pci.claimMechanism(self) else {
                setError("a device that owns PCI functions cannot forward configuration accesses")
                return .busy
            }
            configMechanism.store(true, ordering: .relaxed)
        }
        return machine.pci.access(bdf: bdf, offset: offset, size: size, isWrite: isWrite, data: &data)
    }

    func mapBAR(region: UInt32, io: Bool, base: UInt64, length: UInt64) -> Bool {
        guard let device else { return false }
        if io {
            guard base + length <= 0x10000 else { return false }
            return machine.ports.register(device: device, region: region, port: UInt16(base), length: UInt32(length)) == .ok
        }
        guard length > 0, base <= UInt64.max - length, backedMemory(overlapping: base, length: length) == nil else { return false }
        return machine.mmio.register(device: device, region: region, address: base, length: length) == .ok
    }

    func unmapBAR(region: UInt32) {
        guard let device else { return }
        _ = machine.ports.unregister(device: device, region: region) || machine.mmio.unregister(device: device, region: region)
    }

    var handlesPCIConfig: Bool { device?.handlesPCIConfig ?? false }

    func forwardPCIConfig(function: UInt32, offset: UInt32, size: UInt32, flags: UInt32, data: inout UInt32) {
        device?.pciConfig(function: function, offset: offset, size: size, flags: flags, data: &data)
    }
}

// MARK: ABI 1.3 machine facts

extension DeviceContext {
    func machineFact(_ fact: UInt32) -> (veneer_status, [UInt8]) {
        guard let facts = machine.facts.withLock({ $0 }) else { return (.again, []) }
        do {
            return (.ok, try facts.bytes(of: fact, fileLimit: machine.memory.map.ramBytes))
        } catch {
            switch error {
            case .unknown: return (.unsupported, [])
            case .unreadable(let reason):
                setError(reason)
                return (.ioError, [])
            }
        }
    }
}

// MARK: ABI 1.4 Hyper-V connections

extension DeviceContext {
    func hvConnect(kind rawKind: UInt32, connectionID: UInt32) -> veneer_status {
        guard let device else { return .invalid }
        guard let kind = HyperVConnectionKind(rawValue: rawKind) else { return .invalid }
        guard let hyperv = machine.hyperv else {
            setError("Hyper-V connections need an enlightened VM (hyperv = true)")
            return .unsupported
        }
        guard !machine.vcpusRunning else {
            setError("Hyper-V connections can only be made while the VM is being created")
            return .busy
        }
        do {
            try hyperv.connections.connect(kind, id: connectionID, handler: PluginConnectionHandler(device: device))
        } catch {
            setError("\(kind == .message ? "message" : "event") \(error)")
            if case .outOfRange = error { return .invalid }
            return .busy
        }
        machine.logger.log(.debug, id, "Hyper-V \(kind == .message ? "message" : "event") connection \(hex(connectionID))")
        return .ok
    }

    func hvPostMessage(vp: UInt32, sint: UInt32, messageType: UInt32, payload: [UInt8]) -> veneer_status {
        guard let hyperv = machine.hyperv else { return .unsupported }
        guard HyperVConnectionRules.validMessage(vp: vp, vpCount: hyperv.vpCount, sint: sint, messageType: messageType,
                                                 length: payload.count) else { return .invalid }
        return hyperv.postMessage(vp: vp, sint: UInt8(sint), messageType: messageType, payload: payload) ? .ok : veneer_status(VENEER_ENOSPC)
    }

    func hvSignalEvent(vp: UInt32, sint: UInt32, flag: UInt32) -> veneer_status {
        guard let hyperv = machine.hyperv else { return .unsupported }
        guard HyperVConnectionRules.validEvent(vp: vp, vpCount: hyperv.vpCount, sint: sint, flag: flag) else { return .invalid }
        hyperv.signal(vp: vp, sint: UInt8(sint), flag: flag)
        return .ok
    }
}

// MARK: ABI 1.5 partition reference time

extension DeviceContext {
    /// The partition's own reference clock (the one behind TIME_REF_COUNT and the TSC page).
    func hvReferenceTime() -> (veneer_status, UInt64) {
        guard let hyperv = machine.hyperv else { return (.unsupported, 0) }
        return (.ok, hyperv.referenceTime())
    }
}

/// A device's Hyper-V connection: the guest's hypercalls become the plugin's callbacks, on the
/// calling vCPU's thread (the hypercall's status is the plugin's answer).
struct PluginConnectionHandler: HyperVConnectionHandler {
    weak var device: PluginDevice?

    func message(connectionID: UInt32, vp: UInt32, messageType: UInt32, payload: [UInt8]) -> HypercallStatus {
        guard let device else { return .invalidConnectionID }
        return HypercallStatus(rawValue: device.hvMessage(connectionID: connectionID, vp: vp, messageType: messageType, payload: payload))
    }

    func event(connectionID: UInt32, vp: UInt32, flag: UInt32) {
        device?.hvEvent(connectionID: connectionID, vp: vp, flag: flag)
    }
}
