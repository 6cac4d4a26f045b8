import VMBusProtocol
import VeneerHost
import VeneerPluginABI
#if canImport(Glibc)
import Glibc
#endif

public struct HarnessError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Loads one plugin `.so` and drives one instance of it without a VM: the same ABI, loader,
/// parameter validation and guest-memory checks as `veneer run`, with fakes for everything else.
///
///     let uart = try PluginHarness(plugin: "serial16550", parameters: ["output": .string("none")])
///     uart.write(port: 0x3f8 + 3, 0x80)
///     #expect(uart.host.irqLevels[4] == false)
public final class PluginHarness {
    public let library: PluginLibrary
    public let device: PluginDevice
    public let host: FakeHost

    /// Plugin `nameOrPath` (a name found through the plugin search path, or a path to a .so).
    /// `parameters` are validated as a config's are; a parameter group takes one dictionary per
    /// table: `["disk": .group([["lun": .int(0), "path": .string("a.img")]])]`.
    /// `pciBus`: a bus shared with other harnesses (e.g. a `pci-host` harness that should reach
    /// this device's functions); by default the instance gets a bus of its own.
    public init(
        plugin nameOrPath: String,
        parameters: [String: ParameterValidation.Input] = [:],
        instanceName: String = "dut",
        ramBytes: UInt64 = 16 << 20,
        vcpuCount: UInt32 = 1,
        pciBus: PCIBus? = nil,
        registry: PluginRegistry = .standard()
    ) throws {
        let path = nameOrPath.contains("/") ? nameOrPath : try registry.locate(nameOrPath)
        library = try PluginLibrary(path: path)
        let values = try ParameterValidation.resolve(parameters, schema: library.info.parameters)
        host = FakeHost(memory: try GuestMemory(map: try MemoryMap.pc(ramBytes: ramBytes)), pci: pciBus ?? PCIBus())
        device = PluginDevice(library: library, instanceName: instanceName, host: host)
        host.device = device
        host.setVPCount(vcpuCount)
        do {
            try device.create(parameters: values, vcpuCount: vcpuCount)
            host.metrics.seal()   // as the VMM: metrics are registered during create only
        } catch {
            host.pci.remove(owner: host)  // a failed create may have registered functions
            throw error
        }
        try device.reset()
        try device.start()
    }

    deinit {
        try? device.stop()
        host.pci.remove(owner: host)
        device.destroy()
    }

    // MARK: guest accesses, dispatched like the VMM's buses (unclaimed reads are all ones)

    private func access(_ kind: FakeHost.Region.Kind, _ address: UInt64, size: Int, write: UInt64?) -> UInt64 {
        guard let region = host.regions.first(where: {
            $0.kind == kind && address >= $0.base && address - $0.base < $0.length
        }) else { return write == nil ? (size >= 8 ? .max : (1 << (UInt64(size) * 8)) - 1) : 0 }
        var flags: UInt32 = kind == .mmio ? UInt32(VENEER_IO_MMIO) : 0
        var data: UInt64 = size >= 8 ? .max : (1 << (UInt64(size) * 8)) - 1
        if let write {
            flags |= UInt32(VENEER_IO_WRITE)
            data = write
        }
        device.io(region: region.id, offset: address - region.base, size: UInt32(size), flags: flags, data: &data)
        return data
    }

    @discardableResult
    public func read(port: UInt16, size: Int = 1) -> UInt64 { access(.pio, UInt64(port), size: size, write: nil) }
    public func write(port: UInt16, _ value: UInt64, size: Int = 1) { _ = access(.pio, UInt64(port), size: size, write: value) }
    @discardableResult
    public func read(mmio address: UInt64, size: Int = 4) -> UInt64 { access(.mmio, address, size: size, write: nil) }
    public func write(mmio address: UInt64, _ value: UInt64, size: Int = 4) { _ = access(.mmio, address, size: size, write: value) }

    /// An access straight to (region, offset), as the conformance suite's random accesses do.
    @discardableResult
    public func access(region: UInt32, offset: UInt64, size: Int, write: UInt64?, mmio: Bool) -> UInt64 {
        var flags: UInt32 = mmio ? UInt32(VENEER_IO_MMIO) : 0
        var data: UInt64 = size >= 8 ? .max : (1 << (UInt64(size) * 8)) - 1
        if let write {
            flags |= UInt32(VENEER_IO_WRITE)
            data = write
        }
        device.io(region: region, offset: offset, size: UInt32(size), flags: flags, data: &data)
        return data
    }

    // MARK: PCI (configuration accesses straight to the bus, as a configuration mechanism makes them)

    /// The address of the device's first PCI function.
    public var pciFunction: UInt32? { host.pciFunctions.first }

    /// Reads `size` bytes at `offset` of the configuration space of function `bdf` (default:
    /// the device's first function).
    public func pciConfigRead(_ offset: UInt32, size: UInt32 = 4, function bdf: UInt32? = nil) -> UInt32 {
        var data: UInt32 = 0
        _ = host.pci.access(bdf: bdf ?? pciFunction ?? 0, offset: offset, size: size, isWrite: false, data: &data)
        return data
    }

    public func pciConfigWrite(_ offset: UInt32, _ value: UInt32, size: UInt32 = 4, function bdf: UInt32? = nil) {
        var data = value
        _ = host.pci.access(bdf: bdf ?? pciFunction ?? 0, offset: offset, size: size, isWrite: true, data: &data)
    }

    /// Places BAR `index` at `address` (both dwords of a 64-bit BAR) and enables I/O and memory
    /// decoding, as firmware would.
    public func placeBAR(_ index: Int, at address: UInt64, function bdf: UInt32? = nil) {
        let offset = UInt32(0x10 + 4 * index)
        let is64 = pciConfigRead(offset, function: bdf) & 0x7 == 0x4
        pciConfigWrite(offset, UInt32(truncatingIfNeeded: address), function: bdf)
        if is64 { pciConfigWrite(offset + 4, UInt32(truncatingIfNeeded: address >> 32), function: bdf) }
        let command = pciConfigRead(0x04, size: 2, function: bdf)
        pciConfigWrite(0x04, command | 0x3, size: 2, function: bdf)
    }

    // MARK: time, work and fds

    /// Advances the manual clock, firing every timer that falls due, in order.
    public func advance(nanoseconds: UInt64) {
        let target = host.now + nanoseconds
        while let token = host.nextDueTimer(upTo: target) { device.timerFired(token: token) }
        deliverHostEvents()
    }

    /// Advances the manual clock as a stalled host would: the clock jumps, then each timer that
    /// fell due in the meantime fires once, late. Devices must not replay every missed deadline.
    public func advanceLate(nanoseconds: UInt64) {
        host.jumpClock(to: host.now + nanoseconds)
        while let token = host.nextOverdueTimer() { device.timerFired(token: token) }
        deliverHostEvents()
    }

    /// Runs posted work until none is left (work may post more).
    public func runPostedWork() {
        var tokens = host.takeWork()
        while !tokens.isEmpty {
            tokens.forEach { device.workPosted(token: $0) }
            tokens = host.takeWork()
        }
        deliverHostEvents()
    }

    /// Polls the watched fds once (up to `timeoutMilliseconds`) and delivers readiness; returns
    /// how many fds were ready.
    @discardableResult
    public func pollFDs(timeoutMilliseconds: Int32 = 0) -> Int {
        let watches = host.watchList()
        guard !watches.isEmpty else { return 0 }
        var fds = watches.map { pollfd(fd: $0.fd, events: Int16(truncatingIfNeeded: $0.events), revents: 0) }
        let n = poll(&fds, nfds_t(fds.count), timeoutMilliseconds)
        guard n > 0 else { return 0 }
        for (w, p) in zip(watches, fds) where p.revents != 0 {
            device.fdReady(token: w.token, events: UInt32(UInt16(bitPattern: p.revents)))
        }
        deliverHostEvents()
        return Int(n)
    }

    // MARK: VMBus (the test plays the guest)

    /// Opens a channel the device offered (a primary or a sub-channel), as a guest's OPENCHANNEL
    /// would. A rescinded channel cannot be opened.
    public func openChannel(_ channel: UInt32, userData: [UInt8] = []) {
        guard host.setChannel(channel, open: true) else { return }
        device.vmbusOpened(channel: channel, userData: userData)
        deliverHostEvents()
    }

    /// Closes a channel, as a guest's CLOSECHANNEL would. Closing a primary closes and rescinds
    /// its sub-channels first, as the VMM's VMBus host does (the device hears vmbus_closed for
    /// each open one, then for the primary).
    public func closeChannel(_ channel: UInt32) {
        for sub in host.closeSubchannels(of: channel) { device.vmbusClosed(channel: sub) }
        guard host.setChannel(channel, open: false) else { return }
        device.vmbusClosed(channel: channel)
        deliverHostEvents()
    }

    /// Queues packets as the guest would write them, then signals the channel once.
    public func send(_ packets: [FakeHost.Packet], channel: UInt32) {
        packets.forEach { host.queue($0, channel: channel) }
        device.vmbusSignalled(channel: channel)
        deliverHostEvents()
    }

    /// Limits how many more packets the device can write before its writes report a full ring;
    /// `nil` makes room again and signals the channel, as a guest draining its ring would.
    public func limitRoom(_ packets: Int?, channel: UInt32) {
        host.setRoom(packets ?? .max, channel: channel)
        if packets == nil { device.vmbusSignalled(channel: channel) }
        deliverHostEvents()
    }

    /// Queues packets as the guest would write them without signalling the channel (a guest
    /// that writes while the device is still draining): the device finds them on its next read.
    public func queue(_ packets: [FakeHost.Packet], channel: UInt32) {
        packets.forEach { host.queue($0, channel: channel) }
    }

    /// Signals the channel without sending anything (a guest's spurious or repeated signal).
    public func signal(channel: UInt32) {
        device.vmbusSignalled(channel: channel)
        deliverHostEvents()
    }

    /// Delivers what the host owes the device after a call returned: vmbus_closed for channels
    /// its own vmbus_rescind closed (the VMM delivers those later on its event loop, never from
    /// inside the call). The harness's guest actions call it; tests driving the device
    /// otherwise may call it too.
    public func deliverHostEvents() {
        var closed = host.takePendingClosed()
        while !closed.isEmpty {
            closed.forEach { device.vmbusClosed(channel: $0) }
            closed = host.takePendingClosed()
        }
    }

    // MARK: guest buffers (GPA-direct packets and GPADLs over the fake guest RAM)

    /// The guest-physical range of `length` bytes at `gpa` as a GPA-direct or GPADL range: byte
    /// offset into the first page, one PFN per page touched. `length` must be at least 1.
    public static func guestRange(gpa: UInt64, length: Int) -> GPARange {
        let offset = UInt32(gpa & 0xFFF)
        let pages = (Int(offset) + max(length, 1) + 4095) / 4096
        return GPARange(byteCount: UInt32(truncatingIfNeeded: length), byteOffset: offset,
                        pfns: (0..<UInt64(pages)).map { (gpa >> 12) + $0 })
    }

    /// A GPA-direct packet (type 9) as the guest writes it: the range list
    /// ({u32 reserved; u32 rangecount; ranges}) as its header, then `payload`. `ranges` may be
    /// anything, including ranges outside guest RAM or with too few PFNs (hostile tests).
    public static func gpaDirectPacket(transactionID: UInt64, ranges: [GPARange], payload: [UInt8],
                                       completionRequested: Bool = true) -> FakeHost.Packet {
        var w = ByteWriter(capacity: GPADirectHeader(ranges: ranges).encodedSize)
        GPADirectHeader(ranges: ranges).encode(into: &w)
        return FakeHost.Packet(type: UInt16(VENEER_VMBUS_GPA_DIRECT),
                               flags: completionRequested ? UInt16(VENEER_VMBUS_COMPLETION_REQUESTED) : 0,
                               transactionID: transactionID, header: w.bytes, payload: payload)
    }

    /// Sends one GPA-direct request whose data buffer is [gpa, gpa + length) of the fake guest
    /// RAM, and signals the channel.
    public func sendGPADirect(channel: UInt32, transactionID: UInt64, gpa: UInt64, length: Int, payload: [UInt8]) {
        send([Self.gpaDirectPacket(transactionID: transactionID, ranges: [Self.guestRange(gpa: gpa, length: length)],
                                   payload: payload)], channel: channel)
    }

    /// The guest creates GPADL `id` for `channel` (netvsc's receive and send buffers): false when
    /// the id is taken or a page is not guest RAM, as the VMM would refuse it.
    @discardableResult
    public func defineGPADL(_ id: UInt32, channel: UInt32, ranges: [GPARange]) -> Bool {
        host.defineGPADL(id, ranges: ranges, channel: channel)
    }

    /// The guest tears GPADL `id` of `channel` down.
    @discardableResult
    public func tearDownGPADL(_ id: UInt32, channel: UInt32) -> Bool { host.removeGPADL(id, channel: channel) }

    /// Writes bytes into the fake guest RAM (a test's data buffers).
    public func writeGuest(_ bytes: [UInt8], at gpa: UInt64) throws { try host.memory.load(bytes, at: gpa) }

    /// Reads bytes of the fake guest RAM (what the device wrote into the guest's buffers).
    public func readGuest(_ gpa: UInt64, count: Int) throws -> [UInt8] { try host.memory.bytes(gpa, count: count) }

    // MARK: Hyper-V connections (the test plays the guest)

    /// The guest's HvPostMessage from `vp` to `connection`; returns the hypercall status. A
    /// connection the device did not claim gets HV_STATUS_INVALID_CONNECTION_ID, as in a VM.
    public func hvPost(connection: UInt32, vp: UInt32 = 0, messageType: UInt32 = 1, payload: [UInt8]) -> UInt16 {
        guard host.hvConnections.contains(.init(kind: UInt32(VENEER_HV_MESSAGE_CONNECTION.rawValue), id: connection)) else { return 0x12 }
        return device.hvMessage(connectionID: connection, vp: vp, messageType: messageType, payload: payload)
    }

    /// The guest's HvSignalEvent from `vp` on `connection` with `flag`; returns the hypercall status.
    public func hvSignal(connection: UInt32, vp: UInt32 = 0, flag: UInt32 = 0) -> UInt16 {
        guard host.hvConnections.contains(.init(kind: UInt32(VENEER_HV_EVENT_CONNECTION.rawValue), id: connection)) else { return 0x12 }
        device.hvEvent(connectionID: connection, vp: vp, flag: flag)
        return 0
    }

    // MARK: lifecycle and state

    public func reset() throws { try device.reset() }

    public func save() throws -> [UInt8] { try device.save().bytes }

    public func load(_ bytes: [UInt8], version: UInt32? = nil) throws {
        try device.load(version: version ?? library.info.stateVersion, bytes: bytes)
    }
}

/// A parameter value as a test spells it: `["port": .int(0x3f8), "output": .string("none")]`.
public typealias ParameterInput = ParameterValidation.Input
