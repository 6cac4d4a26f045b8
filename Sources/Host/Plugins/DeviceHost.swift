import VeneerPluginABI

/// The services a host offers one device instance: what `veneer_host_api` exposes, in Swift.
/// The VMM (`DeviceContext`) and the test harness (`FakeHost`) both implement it, so one C bridge
/// (`HostServiceTable`) serves both and a plugin cannot tell them apart.
public protocol DeviceHost: AnyObject, Sendable {
    func log(level: UInt32, message: String)
    func setError(_ message: String)
    func registerPortIO(region: UInt32, port: UInt16, length: UInt32) -> veneer_status
    func registerMMIO(region: UInt32, address: UInt64, length: UInt64) -> veneer_status
    func unregisterRegion(_ region: UInt32) -> veneer_status
    func readGuest(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> veneer_status
    func writeGuest(_ address: UInt64, from buffer: UnsafeRawBufferPointer) -> veneer_status
    func mapGuest(_ address: UInt64, length: UInt64, writable: Bool) -> UnsafeMutableRawPointer?
    func setIRQ(line: UInt32, level: Bool) -> veneer_status
    func sendMSI(address: UInt64, data: UInt32) -> veneer_status
    func clockNanoseconds() -> UInt64
    func armTimer(token: UInt64, deadline: UInt64, period: UInt64) -> veneer_status
    func cancelTimer(token: UInt64) -> veneer_status
    func watch(fd: Int32, events: UInt32, token: UInt64) -> veneer_status
    func unwatch(fd: Int32) -> veneer_status
    func postWork(token: UInt64) -> veneer_status
    func requestStop(reason: UInt32, exitStatus: Int32)

    // ABI 1.1
    func vmbusOffer(_ offer: VMBusOfferRequest) -> (veneer_status, channel: UInt32)
    func vmbusRead(channel: UInt32, into buffer: UnsafeMutableRawBufferPointer) -> (veneer_status, VMBusReadResult?)
    func vmbusWrite(channel: UInt32, type: UInt16, flags: UInt16, transactionID: UInt64, data: UnsafeRawBufferPointer) -> veneer_status
    func ioeventAdd(mmio: Bool, address: UInt64, length: UInt32, fd: Int32) -> veneer_status

    // ABI 1.2
    /// Puts a function on the PCI bus; the handle is its address (bus << 8 | device << 3 | function).
    func pciRegister(_ function: PCIFunctionRequest) -> (veneer_status, handle: UInt32)
    /// A configuration access forwarded by a configuration mechanism (see `PCIBus.access`).
    func pciConfigAccess(bdf: UInt32, offset: UInt32, size: UInt32, isWrite: Bool, data: inout UInt32) -> veneer_status

    // ABI 1.3
    /// Machine fact `fact` (enum veneer_machine_fact) in its ABI encoding: `.again` while the
    /// machine is still being built, `.unsupported` for an unknown fact.
    func machineFact(_ fact: UInt32) -> (veneer_status, [UInt8])

    // ABI 1.4 (Hyper-V connections)
    /// Claims a message or event connection id (`HyperVConnectionKind`) for the instance.
    func hvConnect(kind: UInt32, connectionID: UInt32) -> veneer_status
    /// Queues a SynIC message for `sint` of `vp`.
    func hvPostMessage(vp: UInt32, sint: UInt32, messageType: UInt32, payload: [UInt8]) -> veneer_status
    /// Sets event flag `flag` of `sint` of `vp`.
    func hvSignalEvent(vp: UInt32, sint: UInt32, flag: UInt32) -> veneer_status

    // ABI 1.5
    /// The partition reference time (100 ns units), or `.unsupported` in a VM that is not enlightened.
    func hvReferenceTime() -> (veneer_status, UInt64)

    // ABI 1.7 (VMBus channels of storage- and network-class VSPs; `vmbusOffer` is valid at run
    // time too)
    /// Withdraws a primary channel of the instance (its sub-channels go with it).
    func vmbusRescind(channel: UInt32) -> veneer_status
    /// Offers `count` (>= 1) more sub-channels of the open primary `primary`; their ids.
    func vmbusOfferSubchannels(primary: UInt32, count: Int) -> (veneer_status, [UInt32])
    /// vmbus_read_segments: see `VMBusSegmentedRead`.
    func vmbusReadSegments(channel: UInt32, into buffer: UnsafeMutableRawBufferPointer, segmentCapacity: Int) -> VMBusSegmentedRead
    /// The pages of GPADL `gpadl` of `channel` (or of its primary) as segments.
    func vmbusGPADLSegments(channel: UInt32, gpadl: UInt32) -> (veneer_status, [VMBusSegment])
    /// Writes packets in order until one does not fit, signalling the guest at most once.
    func vmbusWriteBatch(channel: UInt32, packets: [OutgoingRingPacket]) -> (veneer_status, written: Int)

    // ABI 1.8 (management)
    /// Registers a metric (`name` already checked against [a-z][a-z0-9_]{0,63}, `kind` a
    /// VENEER_METRIC_*): its handle, `.invalid` for a duplicate or a call after create,
    /// `.noSpace` beyond `ManagementLimits.maxMetrics`.
    func metricRegister(name: String, help: String, kind: UInt32) -> (veneer_status, UInt32)
    func metricAdd(_ metric: UInt32, delta: UInt64)
    func metricSet(_ metric: UInt32, value: Int64)
    /// The answer to management request `request`: `.invalid` when it is unknown or already answered.
    func controlReply(request: UInt64, status: veneer_status, text: String) -> veneer_status
}

/// Bounds on ABI 1.8 calls.
public enum ManagementLimits {
    public static let maxMetrics = 256
    public static let maxMetricNameBytes = 64
    /// A control_reply text beyond this is refused (VENEER_EINVAL).
    public static let maxReplyBytes = 1 << 20

    /// [a-z][a-z0-9_]* of at most 64 bytes: a Prometheus-safe name suffix.
    public static func isMetricName(_ name: String) -> Bool {
        let b = Array(name.utf8)
        guard (1...maxMetricNameBytes).contains(b.count), (0x61...0x7A).contains(b[0]) else { return false }
        return b.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }
    }
}

/// What vmbus_read_segments found: the status, the packet's fields (with `.ok`, and with
/// `.noSpace` to say what is needed), and its segments (all of them: copied out with `.ok`,
/// counted with `.noSpace`).
public struct VMBusSegmentedRead: Sendable, Equatable {
    public var status: veneer_status
    public var result: VMBusReadResult?
    public var segments: [VMBusSegment]

    public init(status: veneer_status, result: VMBusReadResult? = nil, segments: [VMBusSegment] = []) {
        self.status = status
        self.result = result
        self.segments = segments
    }

    /// The one rule both hosts apply to a packet at the head of the ring: a GPA-direct packet
    /// (`segments` non-nil) hands over its payload alone and its ranges as segments; any other
    /// gives its header before its payload, as vmbus_read does. Copies into `buffer` and returns
    /// `.ok` only when the bytes and the segments both fit, else `.noSpace` with what is needed;
    /// the caller consumes the packet only on `.ok`.
    public static func deliver(type: UInt16, flags: UInt16, transactionID: UInt64, header: [UInt8], payload: [UInt8],
                               segments: [VMBusSegment]?, into buffer: UnsafeMutableRawBufferPointer,
                               segmentCapacity: Int) -> VMBusSegmentedRead {
        let bytes = segments == nil ? header : []
        let result = VMBusReadResult(type: type, flags: flags, transactionID: transactionID,
                                     headerLength: bytes.count, payloadLength: payload.count)
        let found = segments ?? []
        guard bytes.count + payload.count <= buffer.count, found.count <= segmentCapacity else {
            return VMBusSegmentedRead(status: .noSpace, result: result, segments: found)
        }
        if let base = buffer.baseAddress {
            bytes.withUnsafeBytes { if let h = $0.baseAddress { base.copyMemory(from: h, byteCount: bytes.count) } }
            payload.withUnsafeBytes { if let p = $0.baseAddress { (base + bytes.count).copyMemory(from: p, byteCount: payload.count) } }
        }
        return VMBusSegmentedRead(status: .ok, result: result, segments: found)
    }
}

/// Bounds on what one ABI 1.7 call may ask of a host.
public enum VMBusCallLimits {
    /// Packets in one vmbus_write_batch call.
    public static let maxBatchPackets = 4096
    /// A packet's header or payload: the descriptor's 16-bit len8 cannot describe more.
    public static let maxPacketBytes = 0xFFFF * 8
    /// Sub-channels asked for in one call (a primary never has more).
    public static let maxSubchannelsPerCall = VMBusLimits.maxSubchannels
}

/// The rules of ABI 1.4's Hyper-V connections that every host checks the same way.
public enum HyperVConnectionRules {
    public static let pluginConnectionIDs: ClosedRange<UInt32> = 0x1_0000...0xFF_FFFF
    public static let maxPayload = 240

    /// `hv_post_message` arguments a host must refuse (VENEER_EINVAL) whatever its state.
    public static func validMessage(vp: UInt32, vpCount: UInt32, sint: UInt32, messageType: UInt32, length: Int) -> Bool {
        vp < vpCount && sint < 16 && messageType != 0 && messageType < 0x8000_0000 && length <= maxPayload
    }

    public static func validEvent(vp: UInt32, vpCount: UInt32, sint: UInt32, flag: UInt32) -> Bool {
        vp < vpCount && sint < 16 && flag < 2048
    }
}

/// A plugin's channel offer, decoded from `veneer_vmbus_offer`.
public struct VMBusOfferRequest: Sendable, Equatable {
    public var interfaceType: [UInt8]      // 16 bytes, wire order
    public var interfaceInstance: [UInt8]  // 16 bytes, wire order
    public var channelFlags: UInt16
    public var mmioMegabytes: UInt16
    public var userDefined: [UInt8]

    public init(interfaceType: [UInt8], interfaceInstance: [UInt8], channelFlags: UInt16, mmioMegabytes: UInt16, userDefined: [UInt8]) {
        self.interfaceType = interfaceType
        self.interfaceInstance = interfaceInstance
        self.channelFlags = channelFlags
        self.mmioMegabytes = mmioMegabytes
        self.userDefined = userDefined
    }
}

/// What vmbus_read reports about a packet: its descriptor fields and how many bytes of header
/// and payload it has (copied into the caller's buffer when they fit).
public struct VMBusReadResult: Sendable, Equatable {
    public var type: UInt16
    public var flags: UInt16
    public var transactionID: UInt64
    public var headerLength: Int
    public var payloadLength: Int

    public init(type: UInt16, flags: UInt16, transactionID: UInt64, headerLength: Int, payloadLength: Int) {
        self.type = type
        self.flags = flags
        self.transactionID = transactionID
        self.headerLength = headerLength
        self.payloadLength = payloadLength
    }
}

extension veneer_status {
    public static let ok = veneer_status(VENEER_OK)
    public static let invalid = veneer_status(VENEER_EINVAL)
    public static let outOfRange = veneer_status(VENEER_ERANGE)
    public static let busy = veneer_status(VENEER_EBUSY)
    public static let unsupported = veneer_status(VENEER_ENOTSUP)
    public static let ioError = veneer_status(VENEER_EIO)
    public static let noSpace = veneer_status(VENEER_ENOSPC)
    public static let again = veneer_status(VENEER_EAGAIN)
}
