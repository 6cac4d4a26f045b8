import Synchronization
import VMBusProtocol
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
        /// A sub-channel's primary, and its sub_channel_index (0 for a primary).
        var primary: UInt32? = nil
        var subChannelIndex: UInt16 = 0
        var open = false
        /// Withdrawn (by the device, or with its primary): every call on it fails.
        var rescinded = false
        /// The guest broke the "ring" (a GPA-direct packet with a bad range): reads fail until it
        /// reopens, as in the VMM.
        var broken = false
        var toDevice: [Packet] = []
        var fromDevice: [Packet] = []
        /// How many more packets the device may write before the "ring" is full.
        var room = Int.max
        /// Times the guest was signalled: once per write call that wrote anything.
        var guestSignals = 0
        /// GPADLs the guest created for this channel, by id.
        var gpadls: [UInt32: [GPARange]] = [:]
    }

    /// What happened to the device's channels, in order, as the guest sees it.
    public enum ChannelEvent: Sendable, Equatable {
        /// An offer (primary: nil, index 0) or a sub-channel offer of `primary` with its index.
        case offered(channel: UInt32, primary: UInt32?, index: UInt16)
        case rescinded(channel: UInt32)
    }

    /// A live sub-channel of a primary.
    public struct Subchannel: Sendable, Equatable {
        public var channel: UInt32
        public var index: UInt16
        public init(channel: UInt32, index: UInt16) {
            self.channel = channel
            self.index = index
        }
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
        var nextChannelID: UInt32 = 1
        var channelEvents: [ChannelEvent] = []
        /// Channels the host closed while the device was inside a call (a rescind): their
        /// vmbus_closed reaches the device once that call returned, as the VMM delivers it later
        /// on the event loop.
        var pendingClosed: [UInt32] = []
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

    /// The offers the guest can see now (rescinded ones gone), primaries and sub-channels.
    public var offers: [UInt32: VMBusOfferRequest] {
        state.withLock { $0.channels.filter { !$0.value.rescinded }.mapValues(\.offer) }
    }
    /// Every offer and rescind, in order (offers made at run time included).
    public var channelEvents: [ChannelEvent] { state.withLock { $0.channelEvents } }
    /// The live sub-channels of `primary`, by index.
    public func subchannels(of primary: UInt32) -> [Subchannel] {
        state.withLock { s in
            s.channels.filter { $0.value.primary == primary && !$0.value.rescinded }
                .map { Subchannel(channel: $0.key, index: $0.value.subChannelIndex) }.sorted { $0.index < $1.index }
        }
    }
    public func isRescinded(_ channel: UInt32) -> Bool { state.withLock { $0.channels[channel]?.rescinded ?? false } }
    public func isOpen(_ channel: UInt32) -> Bool { state.withLock { $0.channels[channel]?.open ?? false } }
    /// How many times the device signalled the guest on `channel` (one per write call that wrote).
    public func guestSignals(channel: UInt32) -> Int { state.withLock { $0.channels[channel]?.guestSignals ?? 0 } }
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
            let id = s.nextChannelID
            s.nextChannelID += 1
            s.channels[id] = Channel(offer: offer)
            s.channelEvents.append(.offered(channel: id, primary: nil, index: 0))
            return (.ok, id)
        }
    }

    /// A channel the device may use: offered, not rescinded, open.
    private static func usable(_ s: State, _ channel: UInt32) -> Bool {
        guard let c = s.channels[channel] else { return false }
        return c.open && !c.rescinded
    }

    public func vmbusRead(channel: UInt32, into buffer: UnsafeMutableRawBufferPointer) -> (veneer_status, VMBusReadResult?) {
        state.withLock { s -> (veneer_status, VMBusReadResult?) in
            guard Self.usable(s, channel), let c = s.channels[channel] else { return (.invalid, nil) }
            guard !c.broken else { return (.ioError, nil) }
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
            guard Self.usable(s, channel), let c = s.channels[channel] else { return .invalid }
            guard c.room > 0 else { return veneer_status(VENEER_ENOSPC) }
            s.channels[channel]?.room -= 1
            s.channels[channel]?.guestSignals += 1
            s.channels[channel]?.fromDevice.append(Packet(type: type, flags: flags, transactionID: transactionID, payload: Array(data)))
            return .ok
        }
    }

    // MARK: ABI 1.7 VMBus (the rules the VMM's VMBus host applies, on the fake's queues)

    public func vmbusRescind(channel: UInt32) -> veneer_status {
        state.withLock { s in
            guard let c = s.channels[channel], !c.rescinded, c.primary == nil else { return .invalid }
            for sub in s.channels.filter({ $0.value.primary == channel && !$0.value.rescinded }).keys.sorted() {
                Self.withdraw(&s, sub)
            }
            Self.withdraw(&s, channel)
            return .ok
        }
    }

    /// Closes the channel if open (its vmbus_closed is delivered after the current call) and
    /// rescinds it.
    private static func withdraw(_ s: inout State, _ channel: UInt32) {
        if s.channels[channel]?.open == true {
            s.channels[channel]?.open = false
            s.channels[channel]?.toDevice.removeAll()
            s.pendingClosed.append(channel)
        }
        s.channels[channel]?.rescinded = true
        s.channelEvents.append(.rescinded(channel: channel))
    }

    public func vmbusOfferSubchannels(primary: UInt32, count: Int) -> (veneer_status, [UInt32]) {
        state.withLock { s -> (veneer_status, [UInt32]) in
            guard let p = s.channels[primary], p.primary == nil, p.open, !p.rescinded, count >= 1 else { return (.invalid, []) }
            let live = s.channels.values.filter { $0.primary == primary && !$0.rescinded }
            guard live.count + count <= VMBusLimits.maxSubchannels else { return (.noSpace, []) }
            let first = (live.map(\.subChannelIndex).max() ?? 0) + 1
            var ids: [UInt32] = []
            for i in 0..<count {
                let id = s.nextChannelID
                s.nextChannelID += 1
                let index = first + UInt16(i)
                s.channels[id] = Channel(offer: p.offer, primary: primary, subChannelIndex: index)
                s.channelEvents.append(.offered(channel: id, primary: primary, index: index))
                ids.append(id)
            }
            return (.ok, ids)
        }
    }

    public func vmbusReadSegments(channel: UInt32, into buffer: UnsafeMutableRawBufferPointer, segmentCapacity: Int) -> VMBusSegmentedRead {
        state.withLock { s -> VMBusSegmentedRead in
            guard Self.usable(s, channel), let c = s.channels[channel] else { return VMBusSegmentedRead(status: .invalid) }
            guard !c.broken else { return VMBusSegmentedRead(status: .ioError) }
            guard let p = c.toDevice.first else { return VMBusSegmentedRead(status: .again) }
            var segments: [VMBusSegment]? = nil
            if p.type == UInt16(VENEER_VMBUS_GPA_DIRECT) {
                guard let ranges = Self.gpaDirectRanges(p.header, memory: memory),
                      let built = VMBusSegment.segments(of: ranges, memory: memory) else {
                    // What the VMM's ring reader does with such a packet: the ring is unusable.
                    s.channels[channel]?.broken = true
                    return VMBusSegmentedRead(status: .ioError)
                }
                segments = built
            }
            let read = VMBusSegmentedRead.deliver(type: p.type, flags: p.flags, transactionID: p.transactionID,
                                                  header: p.header, payload: p.payload, segments: segments,
                                                  into: buffer, segmentCapacity: segmentCapacity)
            if read.status == .ok { s.channels[channel]?.toDevice.removeFirst() }
            return read
        }
    }

    /// A GPA-direct header's ranges ({u32 reserved; u32 rangecount; ranges}) when well formed
    /// (1-256 ranges, each complete) and every page is guest RAM, as the VMM's ring reader checks.
    static func gpaDirectRanges(_ header: [UInt8], memory: GuestMemory) -> [GPARange]? {
        guard let decoded = try? GPADirectHeader.decode(header: header, maxRanges: VMBusLimits().maxGPADirectRanges),
              memory.firstPageOutsideRAM(decoded.ranges) == nil else { return nil }
        return decoded.ranges
    }

    public func vmbusGPADLSegments(channel: UInt32, gpadl: UInt32) -> (veneer_status, [VMBusSegment]) {
        state.withLock { s -> (veneer_status, [VMBusSegment]) in
            guard let c = s.channels[channel], !c.rescinded else { return (.invalid, []) }
            let ranges = c.gpadls[gpadl] ?? c.primary.flatMap { s.channels[$0]?.gpadls[gpadl] }
            guard let ranges, let segments = VMBusSegment.segments(of: ranges, memory: memory) else { return (.invalid, []) }
            return (.ok, segments)
        }
    }

    // ABI 1.8: metrics and management requests.
    public let metrics = DeviceMetrics()
    public let controlRequests = ControlRequestTable()

    public func metricRegister(name: String, help: String, kind: UInt32) -> (veneer_status, UInt32) {
        metrics.register(name: name, help: help, kind: kind)
    }

    public func metricAdd(_ metric: UInt32, delta: UInt64) { metrics.add(metric, delta: delta) }

    public func metricSet(_ metric: UInt32, value: Int64) { metrics.set(metric, value: value) }

    public func controlReply(request: UInt64, status: veneer_status, text: String) -> veneer_status {
        controlRequests.answer(request, status: status, text: text)
    }

    /// The harness's requests and where their answers land, by id.
    private let controlAnswers = Mutex<[(UInt64, ControlAnswerSlot)]>([])
    func rememberControl(_ id: UInt64, _ slot: ControlAnswerSlot) { controlAnswers.withLock { $0.append((id, slot)) } }
    func controlSlot(_ id: UInt64) -> ControlAnswerSlot? { controlAnswers.withLock { $0.first { $0.0 == id }?.1 } }
    var controlSlots: [ControlAnswerSlot] { controlAnswers.withLock { $0.map(\.1) } }
    var controlIDs: [UInt64] { controlAnswers.withLock { $0.map(\.0) } }

    public func vmbusWriteBatch(channel: UInt32, packets: [OutgoingRingPacket]) -> (veneer_status, written: Int) {
        state.withLock { s -> (veneer_status, written: Int) in
            guard Self.usable(s, channel), let c = s.channels[channel] else { return (.invalid, 0) }
            for packet in packets {
                do throws(RingError) { _ = try RingWriter.encode(packet) } catch { return (.invalid, 0) }
            }
            let written = min(packets.count, c.room)
            for packet in packets.prefix(written) {
                s.channels[channel]?.fromDevice.append(Packet(type: packet.type, flags: packet.flags, transactionID: packet.transactionID,
                                                              header: packet.header, payload: packet.payload))
            }
            s.channels[channel]?.room -= written
            if written > 0 { s.channels[channel]?.guestSignals += 1 }
            return (written == packets.count ? .ok : .noSpace, written)
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
            guard let c = s.channels[id], !c.rescinded else { return false }
            s.channels[id]?.open = open
            s.channels[id]?.broken = false
            if !open { s.channels[id]?.toDevice.removeAll() }
            return true
        }
    }

    /// The guest closes primary `id`: as the VMM does, its sub-channels are closed (the open ones
    /// returned, to hear vmbus_closed first) and rescinded.
    func closeSubchannels(of id: UInt32) -> [UInt32] {
        state.withLock { s in
            var closed: [UInt32] = []
            for sub in s.channels.filter({ $0.value.primary == id && !$0.value.rescinded }).keys.sorted() {
                if s.channels[sub]?.open == true {
                    s.channels[sub]?.open = false
                    s.channels[sub]?.toDevice.removeAll()
                    closed.append(sub)
                }
                s.channels[sub]?.rescinded = true
                s.channelEvents.append(.rescinded(channel: sub))
            }
            return closed
        }
    }

    func takePendingClosed() -> [UInt32] {
        state.withLock { s in defer { s.pendingClosed.removeAll() }; return s.pendingClosed }
    }

    func defineGPADL(_ id: UInt32, ranges: [GPARange], channel: UInt32) -> Bool {
        state.withLock { s in
            guard s.channels[channel] != nil, !s.channels.values.contains(where: { $0.gpadls[id] != nil }),
                  VMBusSegment.segments(of: ranges, memory: memory) != nil else { return false }
            s.channels[channel]?.gpadls[id] = ranges
            return true
        }
    }

    func removeGPADL(_ id: UInt32, channel: UInt32) -> Bool {
        state.withLock { $0.channels[channel]?.gpadls.removeValue(forKey: id) != nil }
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
