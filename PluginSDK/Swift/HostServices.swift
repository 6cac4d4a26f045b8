import VeneerPluginABI
import VeneerSDKSupport
#if canImport(Glibc)
import Glibc
#endif

/// The host's services for one device instance: a typed face over `veneer_host_api`.
///
/// `@unchecked Sendable`: it holds two pointers the host keeps valid and immutable for the
/// instance's lifetime; the ABI says which services may be called from which threads.
public struct HostServices: @unchecked Sendable {
    public let api: UnsafePointer<veneer_host_api>
    public let host: OpaquePointer

    public init(api: UnsafePointer<veneer_host_api>, host: OpaquePointer) {
        self.api = api
        self.host = host
    }

    public enum LogLevel: UInt32, Sendable {
        case error = 0, warning, info, debug
    }

    public func log(_ level: LogLevel, _ message: String) {
        api.pointee.log?(host, level.rawValue, message)
    }

    public func registerPortIO(region: UInt32, port: UInt16, length: UInt32) throws(PluginError) {
        try check(api.pointee.register_pio?(host, region, port, length), "register ports \(hex(port))+\(length)")
    }

    public func registerMMIO(region: UInt32, address: UInt64, length: UInt64) throws(PluginError) {
        try check(api.pointee.register_mmio?(host, region, address, length), "register MMIO \(hex(address))+\(length)")
    }

    public func unregisterRegion(_ region: UInt32) throws(PluginError) {
        try check(api.pointee.unregister_region?(host, region), "unregister region \(region)")
    }

    public func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(PluginError) {
        try check(api.pointee.mem_read?(host, address, buffer.baseAddress, UInt64(buffer.count)),
                  "read \(buffer.count) bytes of guest memory at \(hex(address))")
    }

    public func writeGuest(_ address: UInt64, from buffer: UnsafeRawBufferPointer) throws(PluginError) {
        try check(api.pointee.mem_write?(host, address, buffer.baseAddress, UInt64(buffer.count)),
                  "write \(buffer.count) bytes of guest memory at \(hex(address))")
    }

    public func setIRQ(line: UInt32, level: Bool) {
        _ = api.pointee.irq_set?(host, line, level ? 1 : 0)
    }

    public func sendMSI(address: UInt64, data: UInt32) {
        _ = api.pointee.msi_send?(host, address, data)
    }

    /// Monotonic nanoseconds (manual under the test harness).
    public var now: UInt64 { api.pointee.clock_ns?(host) ?? 0 }

    public func armTimer(token: UInt64, deadline: UInt64, period: UInt64 = 0) {
        _ = api.pointee.timer_arm?(host, token, deadline, period)
    }

    public func cancelTimer(token: UInt64) {
        _ = api.pointee.timer_cancel?(host, token)
    }

    public func watch(fd: Int32, events: FDEvents, token: UInt64) throws(PluginError) {
        try check(api.pointee.fd_watch?(host, fd, events.rawValue, token), "watch fd \(fd)")
    }

    public func unwatch(fd: Int32) {
        _ = api.pointee.fd_unwatch?(host, fd)
    }

    /// Thread-safe: runs `workPosted(token:)` on the instance's serialised context.
    public func postWork(token: UInt64) {
        _ = api.pointee.post_work?(host, token)
    }

    // MARK: VMBus (ABI 1.1)

    /// Offers one VMBus channel (from `make`, or since ABI 1.7 from any callback while the VM runs:
    /// hot add); returns the channel id later events carry.
    /// GUIDs are given in their textual form, e.g. "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f".
    public func offerChannel(interfaceType: String, interfaceInstance: String, userDefined: [UInt8] = [],
                             channelFlags: UInt16 = 0, mmioMegabytes: UInt16 = 0) throws(PluginError) -> UInt32 {
        guard let type = wireGUID(interfaceType) else { throw PluginError("'\(interfaceType)' is not a GUID") }
        guard let instance = wireGUID(interfaceInstance) else { throw PluginError("'\(interfaceInstance)' is not a GUID") }
        guard userDefined.count <= 120 else { throw PluginError("user-defined offer data of \(userDefined.count) bytes exceeds 120") }
        var offer = veneer_vmbus_offer()
        offer.struct_size = UInt32(MemoryLayout<veneer_vmbus_offer>.size)
        offer.user_defined_length = UInt32(userDefined.count)
        withUnsafeMutableBytes(of: &offer.interface_type) { $0.copyBytes(from: type) }
        withUnsafeMutableBytes(of: &offer.interface_instance) { $0.copyBytes(from: instance) }
        withUnsafeMutableBytes(of: &offer.user_defined) { $0.copyBytes(from: userDefined) }
        offer.channel_flags = channelFlags
        offer.mmio_megabytes = mmioMegabytes
        var channel: UInt32 = 0
        try check(api.pointee.vmbus_offer?(host, &offer, &channel), "offer a VMBus channel of type \(interfaceType)")
        return channel
    }

    /// A packet the guest wrote.
    public struct Packet: Sendable, Equatable {
        public var type: UInt16
        public var flags: UInt16
        public var transactionID: UInt64
        /// Type-specific header (for GPA direct: {u32 reserved; u32 rangecount; ranges}).
        public var header: [UInt8]
        public var payload: [UInt8]
        public var completionRequested: Bool { flags & UInt16(VENEER_VMBUS_COMPLETION_REQUESTED) != 0 }

        public init(type: UInt16, flags: UInt16, transactionID: UInt64, header: [UInt8], payload: [UInt8]) {
            self.type = type
            self.flags = flags
            self.transactionID = transactionID
            self.header = header
            self.payload = payload
        }
    }

    public enum ChannelReadError: Error, Sendable, Equatable {
        /// The guest broke the ring or closed the channel; wait for it to reopen.
        case unusable(String)
    }

    /// The next packet, or nil when the ring is empty.
    public func readPacket(channel: UInt32) throws(ChannelReadError) -> Packet? {
        guard let read = api.pointee.vmbus_read else { throw .unusable("the host has no VMBus") }
        var info = veneer_vmbus_packet()
        info.struct_size = UInt32(MemoryLayout<veneer_vmbus_packet>.size)
        var buffer = [UInt8](repeating: 0, count: 4096)
        var status = buffer.withUnsafeMutableBytes { read(host, channel, &info, $0.baseAddress, $0.count) }
        if status == veneer_status(VENEER_ENOSPC) {
            buffer = [UInt8](repeating: 0, count: Int(info.header_length) + Int(info.payload_length))
            status = buffer.withUnsafeMutableBytes { read(host, channel, &info, $0.baseAddress, $0.count) }
        }
        switch status {
        case veneer_status(VENEER_OK):
            let header = Int(info.header_length), payload = Int(info.payload_length)
            guard header + payload <= buffer.count else { throw .unusable("packet larger than reported") }
            return Packet(type: info.type, flags: info.flags, transactionID: info.transaction_id,
                          header: Array(buffer[0..<header]), payload: Array(buffer[header..<header + payload]))
        case veneer_status(VENEER_EAGAIN): return nil
        default: throw .unusable(statusName(status))
        }
    }

    public enum WriteOutcome: Sendable, Equatable {
        case written
        /// No room yet: retry after the next `channelSignalled`.
        case full
        case failed(String)
    }

    public func writePacket(channel: UInt32, type: UInt16 = UInt16(VENEER_VMBUS_INBAND), flags: UInt16 = 0,
                            transactionID: UInt64, payload: [UInt8]) -> WriteOutcome {
        guard let write = api.pointee.vmbus_write else { return .failed("the host has no VMBus") }
        let status = payload.withUnsafeBytes { write(host, channel, type, flags, transactionID, $0.baseAddress, $0.count) }
        switch status {
        case veneer_status(VENEER_OK): return .written
        case veneer_status(VENEER_ENOSPC): return .full
        default: return .failed(statusName(status))
        }
    }

    /// An in-kernel doorbell on a port: returns an eventfd (the caller's to watch and close) that
    /// the kernel signals on every `length`-byte guest write there, with no exit to user space.
    public func addDoorbell(port: UInt16, length: UInt32) throws(PluginError) -> Int32 {
        let fd = veneer_sdk_eventfd()
        guard fd >= 0 else { throw PluginError("cannot create an eventfd for the doorbell at port \(hex(port))") }
        do {
            try check(api.pointee.ioevent_add?(host, 0, UInt64(port), length, fd), "add a doorbell at port \(hex(port))")
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    // MARK: PCI (ABI 1.2)

    /// Puts a PCI function on the VM's bus (call from `make`); returns its address
    /// (bus << 8 | device << 3 | function), which `pciConfig` accesses carry.
    public func registerPCIFunction(_ function: PCIFunction) throws(PluginError) -> UInt32 {
        guard function.bars.count <= 6 else { throw PluginError("\(function.bars.count) BARs: a function has six slots") }
        let capabilities = function.capabilityBytes
        guard capabilities.count <= 192 else { throw PluginError("capabilities of \(capabilities.count) bytes exceed 0x40-0xff") }
        var f = veneer_pci_function()
        f.struct_size = UInt32(MemoryLayout<veneer_pci_function>.size)
        f.vendor_id = function.vendorID
        f.device_id = function.deviceID
        f.subsystem_vendor_id = function.subsystemVendorID
        f.subsystem_id = function.subsystemID
        f.class_code = function.classCode
        f.revision = function.revision
        f.interrupt_pin = function.interruptPin?.rawValue ?? 0
        f.interrupt_line = function.interruptLine ?? 0xFF
        f.slot = function.slot ?? 0
        f.capability_pointer = capabilities.isEmpty ? 0 : 0x40
        f.capabilities_length = UInt32(capabilities.count)
        withUnsafeMutableBytes(of: &f.bars) { raw in
            for (i, bar) in function.bars.enumerated() {
                guard let bar else { continue }
                var b = veneer_pci_bar()
                b.size = bar.size
                b.flags = bar.flags
                b.region = bar.region
                raw.storeBytes(of: b, toByteOffset: i * MemoryLayout<veneer_pci_bar>.stride, as: veneer_pci_bar.self)
            }
        }
        var handle: UInt32 = 0
        let status: veneer_status? = capabilities.withUnsafeBufferPointer { bytes in
            f.capabilities = bytes.baseAddress
            return api.pointee.pci_register?(host, &f, &handle)
        }
        try check(status, "register PCI function \(hex(function.vendorID)):\(hex(function.deviceID))")
        return handle
    }

    /// For a configuration mechanism (the `pci-host` plugin): one guest configuration access
    /// of `size` bytes at `offset` of function `bdf`, answered by the core. False (a read then
    /// holds all ones) when the host refused it.
    public func pciConfigAccess(bdf: UInt32, offset: UInt32, size: Int, isWrite: Bool, data: inout UInt32) -> Bool {
        var value = data
        let status = api.pointee.pci_config_access?(host, bdf, offset, UInt32(size), isWrite ? UInt32(VENEER_IO_WRITE) : 0, &value)
        guard status == veneer_status(VENEER_OK) else {
            if !isWrite { data = size >= 4 ? .max : (1 << (8 * UInt32(size))) - 1 }
            return false
        }
        if !isWrite { data = value }
        return true
    }

    // MARK: Hyper-V connections (ABI 1.4)

    public enum HyperVConnection: Sendable {
        case message
        case event
    }

    /// Whether the host's table reaches the Hyper-V connection calls (hosts before ABI 1.4 have
    /// other fields or reserved space there).
    private var hasHyperVConnections: Bool {
        Int(api.pointee.struct_size) >= MemoryLayout<veneer_host_api>.offset(of: \.hv_signal_event).map { $0 + 8 } ?? Int.max
            && api.pointee.abi_minor >= 4
    }

    /// Claims a Hyper-V connection id (0x10000-0xFFFFFF) for this instance (call from `make`):
    /// the guest's HvPostMessage or HvSignalEvent to it reaches `hyperVMessage` / `hyperVEvent`.
    public func connectHyperV(_ kind: HyperVConnection, id: UInt32) throws(PluginError) {
        guard hasHyperVConnections else { throw PluginError("the host does not offer Hyper-V connections (ABI 1.4)") }
        let raw = kind == .message ? VENEER_HV_MESSAGE_CONNECTION.rawValue : VENEER_HV_EVENT_CONNECTION.rawValue
        try check(api.pointee.hv_connect?(host, UInt32(raw), id), "connect Hyper-V \(kind) connection \(hex(id))")
    }

    public enum HyperVPostResult: Sendable, Equatable {
        case posted
        /// 256 messages already wait for that SINT's slot: try again later.
        case queueFull
        /// No such VP or SINT, a reserved message type, more than 240 bytes, or no Hyper-V host.
        case refused
    }

    /// Queues a SynIC message (type 1-0x7FFFFFFF, at most 240 bytes) for SINT `sint` of VP `vp`.
    public func postHyperVMessage(vp: UInt32, sint: UInt32, messageType: UInt32, payload: [UInt8]) -> HyperVPostResult {
        guard hasHyperVConnections else { return .refused }
        let status = payload.withUnsafeBytes { api.pointee.hv_post_message?(host, vp, sint, messageType, $0.baseAddress, $0.count) }
        switch status {
        case veneer_status(VENEER_OK): return .posted
        case veneer_status(VENEER_ENOSPC): return .queueFull
        default: return .refused
        }
    }

    /// Sets event flag `flag` (0-2047) of SINT `sint` of VP `vp`, interrupting it if it was clear.
    public func signalHyperVEvent(vp: UInt32, sint: UInt32, flag: UInt32) throws(PluginError) {
        guard hasHyperVConnections else { throw PluginError("the host does not offer Hyper-V connections (ABI 1.4)") }
        try check(api.pointee.hv_signal_event?(host, vp, sint, flag), "signal flag \(flag) of VP \(vp) SINT \(sint)")
    }

    // MARK: Partition reference time (ABI 1.5)

    /// The partition reference time in 100 ns units: the counter the guest reads from
    /// TIME_REF_COUNT and the reference TSC page (a lower bound of it outside a vCPU). Nil when the
    /// host is older than ABI 1.5 or the VM is not enlightened.
    public func referenceTime() -> UInt64? {
        guard Int(api.pointee.struct_size) >= MemoryLayout<veneer_host_api>.offset(of: \.hv_reference_time).map({ $0 + 8 }) ?? Int.max,
              api.pointee.abi_minor >= 5, let call = api.pointee.hv_reference_time else { return nil }
        var time: UInt64 = 0
        guard call(host, &time) == veneer_status(VENEER_OK) else { return nil }
        return time
    }

    public enum StopReason: Sendable, Equatable {
        case powerOff
        case reset
        case exit(status: Int32)
        case error(String)
    }

    public func requestStop(_ reason: StopReason) {
        switch reason {
        case .powerOff: api.pointee.request_stop?(host, VENEER_STOP_POWEROFF.rawValue, 0)
        case .reset: api.pointee.request_stop?(host, VENEER_STOP_RESET.rawValue, 0)
        case .exit(let status): api.pointee.request_stop?(host, VENEER_STOP_EXIT.rawValue, status)
        case .error(let message):
            api.pointee.set_error?(host, message)
            api.pointee.request_stop?(host, VENEER_STOP_ERROR.rawValue, 1)
        }
    }

    // MARK: Machine facts (ABI 1.3)

    public enum MachineFact: UInt32, Sendable {
        case vcpuCount = 1, ramBytes, memoryMap, kernel, initrd, cmdline, acpiTables, acpiRSDP, acpiLoader, vmName
    }

    /// Whether the host's table reaches `machine_fact` (hosts before ABI 1.3 do not have it).
    private var hasMachineFact: Bool {
        Int(api.pointee.struct_size) >= MemoryLayout<veneer_host_api>.offset(of: \.machine_fact).map { $0 + 8 } ?? Int.max
            && api.pointee.abi_minor >= 3 && api.pointee.machine_fact != nil
    }

    /// A machine fact's bytes (see the header for each layout), or nil while the machine is still
    /// being built (ask again from `start` or a later callback).
    public func machineFact(_ fact: MachineFact) throws(PluginError) -> [UInt8]? {
        guard hasMachineFact, let call = api.pointee.machine_fact else {
            throw PluginError("the host does not offer machine facts (ABI 1.3)")
        }
        var length = 0
        var status = call(host, fact.rawValue, nil, 0, &length)
        if status == veneer_status(VENEER_EAGAIN) { return nil }
        if status == veneer_status(VENEER_OK) { return [] }
        guard status == veneer_status(VENEER_ENOSPC) else { throw PluginError("cannot read machine fact \(fact): \(statusName(status))") }
        var bytes = [UInt8](repeating: 0, count: length)
        var written = 0
        status = bytes.withUnsafeMutableBytes { call(host, fact.rawValue, $0.baseAddress, $0.count, &written) }
        guard status == veneer_status(VENEER_OK), written == length else {
            throw PluginError("cannot read machine fact \(fact): \(statusName(status))")
        }
        return bytes
    }

    func check(_ status: veneer_status?, _ what: @autoclosure () -> String) throws(PluginError) {
        guard let status else { throw PluginError("the host does not offer the call to \(what())") }
        guard status == veneer_status(VENEER_OK) else { throw PluginError("cannot \(what()): \(statusName(status))") }
    }
}

/// A GUID's 16-byte wire form: the first three groups little-endian, the rest as written.
func wireGUID(_ text: String) -> [UInt8]? {
    let groups = text.split(separator: "-")
    guard groups.count == 5, [8, 4, 4, 4, 12] == groups.map(\.count),
          groups.allSatisfy({ $0.allSatisfy(\.isHexDigit) }) else { return nil }
    func bytes(_ s: Substring) -> [UInt8] {
        stride(from: 0, to: s.count, by: 2).compactMap { i in
            let start = s.index(s.startIndex, offsetBy: i)
            return UInt8(s[start..<s.index(start, offsetBy: 2)], radix: 16)
        }
    }
    return bytes(groups[0]).reversed() + bytes(groups[1]).reversed() + bytes(groups[2]).reversed() + bytes(groups[3]) + bytes(groups[4])
}

public func statusName(_ status: veneer_status) -> String {
    switch status {
    case veneer_status(VENEER_OK): "ok"
    case veneer_status(VENEER_EINVAL): "invalid argument"
    case veneer_status(VENEER_ERANGE): "outside guest RAM"
    case veneer_status(VENEER_ENOMEM): "out of memory"
    case veneer_status(VENEER_EBUSY): "already in use"
    case veneer_status(VENEER_ENOTSUP): "not supported"
    case veneer_status(VENEER_EIO): "I/O error"
    case veneer_status(VENEER_ENOSPC): "buffer too small"
    case veneer_status(VENEER_ESTATE): "malformed state"
    case veneer_status(VENEER_EAGAIN): "nothing there yet"
    default: "status \(status)"
    }
}

func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
