import Synchronization
import VeneerHost
import VeneerPluginABI
#if canImport(Glibc)
import Glibc
#endif

/// The harness's `DeviceHost`: fake guest RAM (a real `GuestMemory`, so bounds checks are the
/// VMM's own), an interrupt recorder, a manual clock with timers, fd watches polled on demand,
/// a posted-work queue, a record of stop requests and log lines, and a PCI bus (the VMM's own
/// `PCIBus`, which may be shared with other harnesses so a configuration mechanism plugin can
/// reach their functions). BARs the guest maps appear in `regions` like any other region; each
/// harness has its own address space, so BARs of different harnesses never conflict.
public final class FakeHost: DeviceHost, @unchecked Sendable {
    // @unchecked: all mutable state lives in `state`, behind a Mutex.

    public struct Region: Sendable, Equatable {
        public enum Kind: Sendable { case pio, mmio }
        public var id: UInt32
        public var kind: Kind
        public var base: UInt64
        public var length: UInt64
    }

    public struct IRQEvent: Sendable, Equatable {
        public var line: UInt32
        public var level: Bool
        public var time: UInt64
    }

    public struct StopRequest: Sendable, Equatable {
        public var reason: UInt32
        public var exitStatus: Int32
    }

    /// A VMBus packet as the harness moves it between a test (playing the guest) and the device.
    public struct Packet: Sendable, Equatable {
        public var type: UInt16
        public var flags: UInt16
        public var transactionID: UInt64
        public var header: [UInt8]
        public var payload: [UInt8]

        public init(type: UInt16 = UInt16(VENEER_VMBUS_INBAND), flags: UInt16 = 0, transactionID: UInt64,
                    header: [UInt8] = [], payload: [UInt8]) {
            self.type = type
            self.flags = flags
            self.transactionID = transactionID
            self.header = header
            self.payload = payload
        }
    }

    public struct Doorbell: Sendable, Equatable {
        public var mmio: Bool
        public var address: UInt64
        public var length: UInt32
        public var fd: Int32

        public init(mmio: Bool, address: UInt64, length: UInt32, fd: Int32) {
            self.mmio = mmio
            self.address = address
            self.length = length
            self.fd = fd
        }
    }

    /// A SynIC message a device posted to the guest (ABI 1.4).
    public struct HyperVMessage: Sendable, Equatable {
        public var vp: UInt32
        public var sint: UInt32
        public var messageType: UInt32
        public var payload: [UInt8]
        public init(vp: UInt32, sint: UInt32, messageType: UInt32, payload: [UInt8]) {
            self.vp = vp
            self.sint = sint
            self.messageType = messageType
            self.payload = payload
        }
    }

    /// An event flag a device set in the guest (ABI 1.4).
    public struct HyperVEvent: Sendable, Equatable {
        public var vp: UInt32
        public var sint: UInt32
        public var flag: UInt32
        public init(vp: UInt32, sint: UInt32, flag: UInt32) {
            self.vp = vp
            self.sint = sint
            self.flag = flag
        }
    }

    struct Channel {
        var offer: VMBusOfferRequest
        var open = false
        var toDevice: [Packet] = []
        var fromDevice: [Packet] = []
        /// How many more packets the device may write before the "ring" is full.
        var room = Int.max
    }

    struct Timer {
        var deadline: UInt64
        var period: UInt64
    }

    struct State {
        var regions: [Region] = []
        var irqLevels: [UInt32: Bool] = [:]
        var irqEvents: [IRQEvent] = []
        var msis: [(UInt64, UInt32)] = []
        var now: UInt64 = 1_000_000_000
        var timers: [UInt64: Timer] = [:]
        var watches: [Int32: (events: UInt32, token: UInt64)] = [:]
        var work: [UInt64] = []
        var stops: [StopRequest] = []
        var logs: [(UInt32, String)] = []
        var errors: [String] = []
        var channels: [UInt32: Channel] = [:]
        var doorbells: [Doorbell] = []
        /// Addresses of the PCI functions the device registered, and their BARs' region ids.
        var pciFunctions: [UInt32] = []
        var pciRegions: Set<UInt32> = []
        /// Hyper-V connections the device claimed (id -> kind), what it sent, and the VP count.
        var hvConnections: Set<HyperVConnection> = []
        var hvMessages: [HyperVMessage] = []
        var hvEvents: [HyperVEvent] = []
        var vpCount: UInt32 = 1
        var machineFacts: MachineFacts?
        /// The fake partition reference clock (100 ns units); nil plays a VM that is not enlightened.
        var referenceTime: UInt64? = 0
    }

    let state = Mutex(State())
    public let memory: GuestMemory
    /// Set by the harness once the device exists, so set_error reaches its failure reports.
    weak var device: PluginDevice?

    public let pci: PCIBus

    init(memory: GuestMemory, pci: PCIBus) {
        self.memory = memory
        self.pci = pci
    }

    public var regions: [Region] { state.withLock { $0.regions } }
    public var irqLevels: [UInt32: Bool] { state.withLock { $0.irqLevels } }
    public var irqEvents: [IRQEvent] { state.withLock { $0.irqEvents } }
    public var msis: [(address: UInt64, data: UInt32)] { state.withLock { $0.msis.map { (address: $0.0, data: $0.1) } } }
    public var stopRequests: [StopRequest] { state.withLock { $0.stops } }
    public var logLines: [String] { state.withLock { $0.logs.map(\.1) } }
    public var errors: [String] { state.withLock { $0.errors } }
    public var now: UInt64 { state.withLock { $0.now } }
    public var armedTimers: [UInt64: (deadline: UInt64, period: UInt64)] {
        state.withLock { $0.timers.mapValues { (deadline: $0.deadline, period: $0.period) } }
    }
    public var watchedFDs: [Int32] { state.withLock { Array($0.watches.keys).sorted() } }
    /// Addresses (bus << 8 | device << 3 | function) of the PCI functions the device registered.
    public var pciFunctions: [UInt32] { state.withLock { $0.pciFunctions } }

    public var offers: [UInt32: VMBusOfferRequest] { state.withLock { $0.channels.mapValues(\.offer) } }
    /// A Hyper-V connection the device claimed: its kind (VENEER_HV_*_CONNECTION) and id.
    public struct HyperVConnection: Hashable, Sendable {
        public var kind: UInt32
        public var id: UInt32
        public init(kind: UInt32, id: UInt32) {
            self.kind = kind
            self.id = id
        }
    }

    public var hvConnections: Set<HyperVConnection> { state.withLock { $0.hvConnections } }
    public var hvMessages: [HyperVMessage] { state.withLock { $0.hvMessages } }
    public var hvEvents: [HyperVEvent] { state.withLock { $0.hvEvents } }
    public func clearHyperVTraffic() { state.withLock { $0.hvMessages.removeAll(); $0.hvEvents.removeAll() } }
    public var doorbells: [Doorbell] { state.withLock { $0.doorbells } }
    public func packetsFromDevice(channel: UInt32) -> [Packet] { state.withLock { $0.channels[channel]?.fromDevice ?? [] } }

    public func clearIRQEvents() { state.withLock { $0.irqEvents.removeAll() } }

    // MARK: DeviceHost

    public func log(level: UInt32, message: String) { state.withLock { $0.logs.append((level, message)) } }

    public func setError(_ message: String) {
        state.withLock { $0.errors.append(message) }
        device?.noteError(message)
    }

    private func register(_ region: Region) -> veneer_status {
        state.withLock { s in
            if s.regions.contains(where: { $0.id == region.id }) { return .invalid }
            let clash = s.regions.contains {
                $0.kind == region.kind && $0.base < region.base + region.length && region.base < $0.base + $0.length
            }
            if clash { return .busy }
            s.regions.append(region)
            return .ok
        }
    }

    private func isBARRegion(_ region: UInt32) -> Bool { state.withLock { $0.pciRegions.contains(region) } }

    public func registerPortIO(region: UInt32, port: UInt16, length: UInt32) -> veneer_status {
        guard !isBARRegion(region) else { return .invalid }
        guard length > 0, UInt32(port) + length <= 0x10000 else { return .invalid }
        return register(Region(id: region, kind: .pio, base: UInt64(port), length: UInt64(length)))
    }

    public func registerMMIO(region: UInt32, address: UInt64, length: UInt64) -> veneer_status {
        guard !isBARRegion(region) else { return .invalid }
        guard length > 0, address <= UInt64.max - length else { return .invalid }
        if memory.map.regions.contains(where: { $0.kind != .mmio && $0.start < address + length && address < $0.end }) {
            return .busy
        }
        return register(Region(id: region, kind: .mmio, base: address, length: length))
    }

    public func unregisterRegion(_ region: UInt32) -> veneer_status {
        guard !isBARRegion(region) else { return .invalid }
        return state.withLock { s in
            guard let i = s.regions.firstIndex(where: { $0.id == region }) else { return .invalid }
            s.regions.remove(at: i)
            return .ok
        }
    }

    public func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> veneer_status {
        do { try memory.read(address, into: buffer); return .ok } catch { return .outOfRange }
    }

    public func writeGuest(_ address: UInt64, from buffer: UnsafeRawBufferPointer) -> veneer_status {
        do { try memory.write(address, from: buffer); return .ok } catch { return .outOfRange }
    }

    public func mapGuest(_ address: UInt64, length: UInt64, writable: Bool) -> UnsafeMutableRawPointer? {
        memory.pointer(address, length: length, writable: writable)
    }

    public func setIRQ(line: UInt32, level: Bool) -> veneer_status {
        state.withLock { s in
            s.irqLevels[line] = level
            s.irqEvents.append(IRQEvent(line: line, level: level, time: s.now))
        }
        return .ok
    }

    public func sendMSI(address: UInt64, data: UInt32) -> veneer_status {
        state.withLock { $0.msis.append((address, data)) }
        return .ok
    }

    public func clockNanoseconds() -> UInt64 { state.withLock { $0.now } }

    public func armTimer(token: UInt64, deadline: UInt64, period: UInt64) -> veneer_status {
        state.withLock { $0.timers[token] = Timer(deadline: deadline, period: period) }
        return .ok
    }

    public func cancelTimer(token: UInt64) -> veneer_status {
        state.withLock { _ = $0.timers.removeValue(forKey: token) }
        return .ok
    }

    public func watch(fd: Int32, events: UInt32, token: UInt64) -> veneer_status {
        guard fd >= 0 else { return .invalid }
        state.withLock { $0.watches[fd] = (events, token) }
        return .ok
    }

    public func unwatch(fd: Int32) -> veneer_status {
        state.withLock { $0.watches.removeValue(forKey: fd) } == nil ? .invalid : .ok
    }

    public func postWork(token: UInt64) -> veneer_status {
        state.withLock { $0.work.append(token) }
        return .ok
    }

    public func requestStop(reason: UInt32, exitStatus: Int32) {
        state.withLock { $0.stops.append(StopRequest(reason: reason, exitStatus: exitStatus)) }
    }

    // MARK: ABI 1.1 VMBus

    public func vmbusOffer(_ offer: VMBusOfferRequest) -> (veneer_status, channel: UInt32) {
        state.withLock { s in
            let id = UInt32(s.channels.count + 1)
            s.channels[id] = Channel(offer: offer)
            return (.ok, id)
        }
    }

    public func vmbusRead(channel: UInt32, into buffer: UnsafeMutableRawBufferPointer) -> (veneer_status, VMBusReadResult?) {
        state.withLock { s -> (veneer_status, VMBusReadResult?) in
            guard let c = s.channels[channel], c.open else { return (.invalid, nil) }
            guard let p = c.toDevice.first else { return (veneer_status(VENEER_EAGAIN), nil) }
            let result = VMBusReadResult(type: p.type, flags: p.flags, transactionID: p.transactionID,
                                         headerLength: p.header.count, payloadLength: p.payload.count)
            let bytes = p.header + p.payload
            guard bytes.count <= buffer.count else { return (veneer_status(VENEER_ENOSPC), result) }
            for (i, b) in bytes.enumerated() { buffer[i] = b }
            s.channels[channel]?.toDevice.removeFirst()
            return (.ok, result)
        }
    }

    public func vmbusWrite(channel: UInt32, type: UInt16, flags: UInt16, transactionID: UInt64, data: UnsafeRawBufferPointer) -> veneer_status {
        state.withLock { s in
            guard let c = s.channels[channel], c.open else { return .invalid }
            guard c.room > 0 else { return veneer_status(VENEER_ENOSPC) }
            s.channels[channel]?.room -= 1
            s.channels[channel]?.fromDevice.append(Packet(type: type, flags: flags, transactionID: transactionID, payload: Array(data)))
            return .ok
        }
    }

    public func ioeventAdd(mmio: Bool, address: UInt64, length: UInt32, fd: Int32) -> veneer_status {
        guard [1, 2, 4, 8].contains(length), fd >= 0 else { return .invalid }
        state.withLock { $0.doorbells.append(Doorbell(mmio: mmio, address: address, length: length, fd: fd)) }
        return .ok
    }

    // MARK: ABI 1.2 PCI

    public func pciRegister(_ function: PCIFunctionRequest) -> (veneer_status, handle: UInt32) {
        do {
            let bdf = try pci.register(function, owner: self)
            state.withLock { s in
                s.pciFunctions.append(bdf)
                for bar in function.bars where bar.size != 0 { s.pciRegions.insert(bar.region) }
            }
            return (.ok, bdf)
        } catch {
            setError(error.reason)
            return (error.status, 0)
        }
    }

    public func pciConfigAccess(bdf: UInt32, offset: UInt32, size: UInt32, isWrite: Bool, data: inout UInt32) -> veneer_status {
        guard pci.claimMechanism(self) else {
            setError("a device that owns PCI functions cannot forward configuration accesses")
            return .busy
        }
        return pci.access(bdf: bdf, offset: offset, size: size, isWrite: isWrite, data: &data)
    }

    // MARK: ABI 1.4 Hyper-V connections (the rules are the VMM's own)

    public func hvConnect(kind: UInt32, connectionID: UInt32) -> veneer_status {
        guard kind == UInt32(VENEER_HV_MESSAGE_CONNECTION.rawValue) || kind == UInt32(VENEER_HV_EVENT_CONNECTION.rawValue) else { return .invalid }
        guard HyperVConnectionRules.pluginConnectionIDs.contains(connectionID) else {
            setError("connection id \(connectionID) is outside 0x10000-0xffffff, the range plugins own")
            return .invalid
        }
        return state.withLock { s -> veneer_status in
            s.hvConnections.insert(HyperVConnection(kind: kind, id: connectionID)).inserted ? .ok : .busy
        }
    }

    public func hvPostMessage(vp: UInt32, sint: UInt32, messageType: UInt32, payload: [UInt8]) -> veneer_status {
        state.withLock { s -> veneer_status in
            guard HyperVConnectionRules.validMessage(vp: vp, vpCount: s.vpCount, sint: sint, messageType: messageType,
                                                     length: payload.count) else { return .invalid }
            s.hvMessages.append(HyperVMessage(vp: vp, sint: sint, messageType: messageType, payload: payload))
            return .ok
        }
    }

    public func hvSignalEvent(vp: UInt32, sint: UInt32, flag: UInt32) -> veneer_status {
        state.withLock { s -> veneer_status in
            guard HyperVConnectionRules.validEvent(vp: vp, vpCount: s.vpCount, sint: sint, flag: flag) else { return .invalid }
            s.hvEvents.append(HyperVEvent(vp: vp, sint: sint, flag: flag))
            return .ok
        }
    }

    // MARK: ABI 1.5 partition reference time

    public func hvReferenceTime() -> (veneer_status, UInt64) {
        state.withLock { s in s.referenceTime.map { (.ok, $0) } ?? (.unsupported, 0) }
    }

    /// The fake partition reference clock: set it (nil: a VM that is not enlightened) or read it.
    /// It moves only when a test moves it, like the harness's manual clock.
    public var referenceTime: UInt64? {
        get { state.withLock { $0.referenceTime } }
        set { state.withLock { $0.referenceTime = newValue } }
    }

    // MARK: driving the fakes (used by PluginHarness)

    func setVPCount(_ count: UInt32) { state.withLock { $0.vpCount = count } }

    func setChannel(_ id: UInt32, open: Bool) -> Bool {
        state.withLock { s in
            guard s.channels[id] != nil else { return false }
            s.channels[id]?.open = open
            if !open { s.channels[id]?.toDevice.removeAll() }
            return true
        }
    }

    func queue(_ packet: Packet, channel: UInt32) {
        state.withLock { $0.channels[channel]?.toDevice.append(packet) }
    }

    func setRoom(_ room: Int, channel: UInt32) {
        state.withLock { $0.channels[channel]?.room = room }
    }

    /// Moves the clock to `target`, returning due timers in deadline order one at a time so that a
    /// callback may re-arm or cancel timers before the next is chosen.
    func nextDueTimer(upTo target: UInt64) -> UInt64? {
        state.withLock { s in
            guard let (token, timer) = s.timers.filter({ $0.value.deadline <= target })
                .min(by: { ($0.value.deadline, $0.key) < ($1.value.deadline, $1.key) })
            else {
                s.now = max(s.now, target)
                return nil
            }
            s.now = max(s.now, timer.deadline)
            if timer.period > 0 {
                s.timers[token] = Timer(deadline: timer.deadline + timer.period, period: timer.period)
            } else {
                s.timers.removeValue(forKey: token)
            }
            return token
        }
    }

    /// Moves the clock to `target` without firing anything on the way, as on a host that stalled.
    func jumpClock(to target: UInt64) { state.withLock { $0.now = max($0.now, target) } }

    /// The earliest timer whose deadline has passed, fired once however late it is: as with a
    /// timerfd, a periodic timer that fell behind resumes at its next deadline after now.
    func nextOverdueTimer() -> UInt64? {
        state.withLock { s in
            guard let (token, timer) = s.timers.filter({ $0.value.deadline <= s.now })
                .min(by: { ($0.value.deadline, $0.key) < ($1.value.deadline, $1.key) })
            else { return nil }
            if timer.period > 0 {
                let missed = (s.now - timer.deadline) / timer.period + 1
                s.timers[token] = Timer(deadline: timer.deadline + missed * timer.period, period: timer.period)
            } else {
                s.timers.removeValue(forKey: token)
            }
            return token
        }
    }

    func takeWork() -> [UInt64] {
        state.withLock { s in defer { s.work.removeAll() }; return s.work }
    }

    func watchList() -> [(fd: Int32, events: UInt32, token: UInt64)] {
        state.withLock { $0.watches.map { (fd: $0.key, events: $0.value.events, token: $0.value.token) } }
    }
}

extension FakeHost: PCIFunctionOwner {
    public func mapBAR(region: UInt32, io: Bool, base: UInt64, length: UInt64) -> Bool {
        if io {
            guard base + length <= 0x10000 else { return false }
        } else if memory.map.regions.contains(where: { $0.kind != .mmio && $0.start < base + length && base < $0.end }) {
            return false
        }
        return register(Region(id: region, kind: io ? .pio : .mmio, base: base, length: length)) == .ok
    }

    public func unmapBAR(region: UInt32) {
        state.withLock { $0.regions.removeAll { $0.id == region } }
    }

    public var handlesPCIConfig: Bool { device?.handlesPCIConfig ?? false }

    public func forwardPCIConfig(function: UInt32, offset: UInt32, size: UInt32, flags: UInt32, data: inout UInt32) {
        device?.pciConfig(function: function, offset: offset, size: size, flags: flags, data: &data)
    }
}

// MARK: ABI 1.3 machine facts

extension FakeHost {
    /// What machine_fact reports; nil (the default) answers VENEER_EAGAIN, as while a VM is built.
    public var machineFacts: MachineFacts? {
        get { state.withLock { $0.machineFacts } }
        set { state.withLock { $0.machineFacts = newValue } }
    }

    public func machineFact(_ fact: UInt32) -> (veneer_status, [UInt8]) {
        guard let facts = machineFacts else { return (.again, []) }
        do {
            return (.ok, try facts.bytes(of: fact, fileLimit: memory.map.ramBytes))
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
