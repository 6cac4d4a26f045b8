import NVSPProtocol
import RNDISProtocol
import VeneerPluginKit

/// One VMBus channel of the NIC (the primary or a sub-channel): NVSP on the primary, the guest's
/// frames and RNDIS control messages on any, and the guest's completions of receive packets.
/// Touched only under its slot's lock in `ChannelTable` (`@unchecked Sendable` rests on that);
/// what channels share lives in `NIC`.
final class ChannelSession: @unchecked Sendable {
    struct Hooks {
        /// Offers `count` sub-channels; their ids, or nil when the host refused.
        var offerSubChannels: (Int) -> [UInt32]?
        /// Receive queues (bit mask) that waited for sections and may read again.
        var wakeReceivers: (UInt64) -> Void
        /// The NIC became able (or unable) to take frames: receive queues re-check.
        var receiveStateChanged: () -> Void
        var log: (String) -> Void
    }

    let channel: UInt32
    /// 0 for the primary, the sub-channel index otherwise: the port queue its frames go out on.
    let queueIndex: Int
    var isPrimary: Bool { queueIndex == 0 }
    let nic: NIC
    let host: HostServices
    let queueLimit: Int
    private let hooks: Hooks
    private(set) var broken = false
    private(set) var subChannelsOffered = 0
    /// Completions and control answers the ring had no room for, oldest first.
    private var waiting: [OutgoingPacket] = []
    /// RNDIS control answers waiting for a free receive section.
    private var controlWaiting: [[UInt8]] = []

    // Preallocated for the transmit path: no allocation per frame.
    let vectors = IOVecList(capacity: 96)
    /// 0..<12 virtio header, 12..<16 an inserted VLAN tag, 16..<16+headerCopy the frame's first
    /// bytes, 320..<364 an RNDIS packet message.
    let scratch = Scratch(512)
    static let headerAt = 16, headerCopy = 192, messageAt = 320
    var stream = GuestBufferMap()
    var ppi = [UInt8](repeating: 0, count: 256)

    init(channel: UInt32, queueIndex: Int, nic: NIC, host: HostServices, queueLimit: Int, hooks: Hooks) {
        self.channel = channel
        self.queueIndex = queueIndex
        self.nic = nic
        self.host = host
        self.queueLimit = queueLimit
        self.hooks = hooks
    }

    private var messageSize: Int { nic.state.withLock { $0.version?.messageSize ?? NVSPMessage.shortSize } }

    // MARK: Events

    /// The guest signalled: room in the ring, new packets, or both.
    func signalled() {
        guard !broken else { return }
        guard flush() else { return }
        retryControl()
        var budget = 1024
        while budget > 0 && waiting.isEmpty {
            budget -= 1
            let packet: SegmentedPacket?
            do { packet = try host.readSegmentedPacket(channel: channel) } catch {
                broken = true
                hooks.log("channel \(channel): \(error); waiting for the guest to reopen it")
                return
            }
            guard let packet else { break }
            handle(packet)
        }
        // More than one budget's worth: come back through the host's next signal or our own.
        if budget == 0 { host.postWork(token: ChannelTable.workToken(channel: channel)) }
    }

    /// Writes what waited for ring room; false while the ring is still full.
    @discardableResult
    private func flush() -> Bool {
        guard !waiting.isEmpty else { return true }
        let (written, outcome) = host.writePackets(channel: channel, waiting)
        waiting.removeFirst(min(written, waiting.count))
        if case .failed(let why) = outcome {
            hooks.log("channel \(channel): write failed: \(why)")
            waiting.removeAll()
        }
        return waiting.isEmpty
    }

    private func send(_ packet: OutgoingPacket) {
        waiting.append(packet)
        flush()
    }

    private func complete(_ packet: SegmentedPacket, _ payload: [UInt8]) {
        guard packet.completionRequested else { return }
        send(OutgoingPacket(type: UInt16(11), transactionID: packet.transactionID, payload: payload))
    }

    // MARK: NVSP

    func handle(_ packet: SegmentedPacket) {
        switch packet.type {
        case 11:
            guard case .rndisPacketComplete = NVSPMessage(packet.payload) else {
                nic.metrics.add(.badCompletion)
                return
            }
            let (freed, waiters) = nic.pool.withLock { $0.complete(transactionID: packet.transactionID) }
            if freed == 0 { nic.metrics.add(.badCompletion) }
            if waiters != 0 { hooks.wakeReceivers(waiters) }
            if !controlWaiting.isEmpty { retryControl() }
        case 6, 9:
            handle(NVSPMessage(packet.payload), packet)
        default:
            nic.metrics.add(.badNVSP)
        }
    }

    private func handle(_ message: NVSPMessage, _ packet: SegmentedPacket) {
        let size = messageSize
        switch message {
        case .initialize(let minimum, let maximum) where isPrimary:
            let version = NVSPVersion.negotiate(minimum: minimum, maximum: maximum)
            if let version { nic.state.withLock { $0.version = version } }
            complete(packet, NVSPReply.initializeComplete(status: version == nil ? .failure : .success)
                .encoded(size: version?.messageSize ?? size))
        case .ndisConfig where isPrimary, .ndisVersion where isPrimary:
            // Nothing to agree: the MTU is the host's, and Linux asks no completion.
            complete(packet, [UInt8](repeating: 0, count: size))
        case .sendReceiveBuffer(let gpadl, let id) where isPrimary:
            let status = attachReceiveBuffer(gpadl: gpadl, id: id)
            let receive = nic.state.withLock { $0.receive }
            complete(packet, NVSPReply.receiveBufferComplete(
                status: status, subAllocationSize: UInt32(receive?.sectionSize ?? 0), count: UInt32(receive?.sectionCount ?? 0))
                .encoded(size: size))
            hooks.receiveStateChanged()
        case .revokeReceiveBuffer(let id) where isPrimary:
            if nic.state.withLock({ $0.receive?.setID == id }) {
                nic.installReceiveBuffer(nil)
                hooks.receiveStateChanged()
            } else {
                nic.metrics.add(.badNVSP)
            }
        case .sendSendBuffer(let gpadl, _) where isPrimary:
            let status = attachSendBuffer(gpadl: gpadl)
            complete(packet, NVSPReply.sendBufferComplete(status: status, sectionSize: status == .success ? UInt32(NIC.sendSectionSize) : 0)
                .encoded(size: size))
        case .revokeSendBuffer where isPrimary:
            nic.state.withLock { $0.send = nil }
        case .rndisPacket(let channelType, let index, let length):
            let status = rndis(packet, channelType: channelType, section: index, length: length)
            complete(packet, NVSPReply.rndisPacketComplete(status: status).encoded(size: size))
        case .subchannel(let operation, let count) where isPrimary:
            let (status, granted) = allocateSubChannels(operation: operation, count: count)
            complete(packet, NVSPReply.subchannelComplete(status: status, count: granted).encoded(size: size))
        case .switchDataPath:
            // No VF is ever offered; an empty completion is what Linux accepts for this one.
            if packet.completionRequested { send(OutgoingPacket(type: 11, transactionID: packet.transactionID, payload: [])) }
        default:
            nic.metrics.add(.badNVSP)
        }
    }

    private func attachReceiveBuffer(gpadl: UInt32, id: UInt16) -> NVSPStatus {
        guard nic.state.withLock({ $0.version != nil && $0.receive == nil }) else {
            nic.metrics.add(.badNVSP)
            return .failure
        }
        guard let map = mapGPADL(gpadl) else { return .failure }
        let size = nic.receiveSectionSize
        let count = min(map.count / size, NIC.maxSections)
        guard count > 0 else {
            nic.metrics.add(.badBuffer)
            return .failure
        }
        nic.installReceiveBuffer(NIC.ReceiveBuffer(map: map, setID: id, gpadl: gpadl, sectionSize: size, sectionCount: count))
        return .success
    }

    private func attachSendBuffer(gpadl: UInt32) -> NVSPStatus {
        guard nic.state.withLock({ $0.version != nil && $0.send == nil }) else {
            nic.metrics.add(.badNVSP)
            return .failure
        }
        guard let map = mapGPADL(gpadl) else { return .failure }
        let count = map.count / NIC.sendSectionSize
        guard count > 0 else {
            nic.metrics.add(.badBuffer)
            return .failure
        }
        nic.state.withLock { $0.send = NIC.SendBuffer(map: map, gpadl: gpadl, sectionSize: NIC.sendSectionSize, sectionCount: count) }
        return .success
    }

    private func mapGPADL(_ gpadl: UInt32) -> GuestBufferMap? {
        let segments: [GuestSegment]
        do { segments = try host.gpadlSegments(channel: channel, gpadl: gpadl) } catch {
            nic.metrics.add(.badBuffer)
            hooks.log("GPADL \(gpadl): \(error)")
            return nil
        }
        guard let map = GuestBufferMap.map(segments.map { ($0.gpa, $0.length) }, limit: NIC.maxBufferBytes, mapper: {
            host.mapGuest($0, length: $1, writable: true)
        }) else {
            nic.metrics.add(.badBuffer)
            hooks.log("GPADL \(gpadl): larger than \(NIC.maxBufferBytes >> 20) MiB or not guest RAM")
            return nil
        }
        return map
    }

    /// Grants up to `count` sub-channels (fewer than the queues the NIC allows) and offers them.
    private func allocateSubChannels(operation: UInt32, count: UInt32) -> (NVSPStatus, UInt32) {
        guard operation == NVSPMessage.allocateSubchannels, let version = nic.state.withLock({ $0.version }), version >= .v5 else {
            nic.metrics.add(.badNVSP)
            return (.failure, 0)
        }
        let grant = min(Int(count), max(0, queueLimit - 1 - subChannelsOffered))
        guard grant > 0 else { return (.success, 0) }
        guard hooks.offerSubChannels(grant) != nil else { return (.failure, 0) }
        subChannelsOffered += grant
        return (.success, UInt32(grant))
    }

    // MARK: RNDIS over NVSP

    /// One SEND_RNDIS_PKT: the RNDIS bytes are in a send-buffer section, in the packet's
    /// GPA-direct ranges, or the section's bytes followed by the ranges.
    private func rndis(_ packet: SegmentedPacket, channelType: UInt32, section: UInt32, length: UInt32) -> NVSPStatus {
        stream.removeAll()
        if section != NVSPMessage.noSection {
            guard let send = nic.state.withLock({ $0.send }), Int(section) < send.sectionCount, length > 0,
                  Int(length) <= send.sectionSize
            else {
                nic.metrics.add(.badSection)
                return .failure
            }
            stream.append(send.map, offset: Int(section) * send.sectionSize, length: Int(length))
        }
        for segment in packet.segments {
            guard segment.length <= UInt64(Self.maxStream - stream.count),
                  let mapped = host.mapGuest(segment.gpa, length: segment.length, writable: false), let base = mapped.baseAddress
            else {
                nic.metrics.add(.badBuffer)
                return .failure
            }
            stream.append(base, count: mapped.count)
        }
        guard stream.count >= RNDISHeader.size else {
            nic.metrics.add(.badRNDIS)
            return .invalidRNDISPacket
        }
        if channelType == RNDISChannelType.control.rawValue {
            return control()
        }
        transmitAll()
        return .success
    }

    /// The most bytes one send may describe (an LSO frame and its RNDIS header, with slack).
    static let maxStream = 1 << 20

    private func control() -> NVSPStatus {
        guard stream.copyOut(offset: 0, into: UnsafeMutableRawBufferPointer(rebasing: scratch.bytes[Self.messageAt..<Self.messageAt + 8])) else {
            return .invalidRNDISPacket
        }
        let declared = Int(scratch.u32le(Self.messageAt + 4))
        guard declared >= RNDISHeader.size, declared <= min(stream.count, RNDISRequest.maxLength) else {
            nic.metrics.add(.badRNDIS)
            return .invalidRNDISPacket
        }
        var bytes = [UInt8](repeating: 0, count: declared)
        _ = bytes.withUnsafeMutableBytes { stream.copyOut(offset: 0, into: $0) }
        let request: RNDISRequest
        do { request = try RNDISRequest.decode(bytes) } catch {
            nic.metrics.add(.badRNDIS)
            hooks.log("RNDIS control message dropped: \(error)")
            return .invalidRNDISPacket
        }
        let controller = RNDISController(nic: nic, queueLimit: queueLimit)
        let response = controller.handle(request)
        switch request {
        case .set, .initialize, .halt, .reset: hooks.receiveStateChanged()
        default: break
        }
        if let response { deliverControl(response.encoded()) }
        return .success
    }

    /// Sends an RNDIS control answer or indication through a receive section (channel type 1).
    func deliverControl(_ message: [UInt8]) {
        controlWaiting.append(message)
        retryControl()
    }

    private func retryControl() {
        while let message = controlWaiting.first {
            guard let buffer = nic.state.withLock({ $0.receive }), message.count <= buffer.sectionSize else {
                // No receive buffer (the guest revoked it or never gave one): nothing can carry it.
                if nic.state.withLock({ $0.receive == nil }) { controlWaiting.removeAll() }
                return
            }
            guard let section = nic.pool.withLock({ $0.take(after: nil, waiter: nil) }) else { return }
            let offset = Int(section) * buffer.sectionSize
            _ = message.withUnsafeBytes { buffer.map.copyIn(offset: offset, from: $0) }
            let id = nic.pool.withLock { $0.transactionID(head: section) }
            var header: [UInt8] = []
            TransferPageHeader.encode(setID: buffer.setID,
                                      ranges: [TransferPageRange(byteCount: UInt32(message.count), byteOffset: UInt32(offset))][...],
                                      into: &header)
            let packet = OutgoingPacket(type: 7, flags: 1, transactionID: id, header: header,
                                        payload: NVSPReply.rndisPacket(channelType: .control).encoded(size: messageSize))
            let (written, outcome) = host.writePackets(channel: channel, [packet])
            guard written == 1 else {
                let waiters = nic.pool.withLock { $0.release(head: section).waiters }
                if waiters != 0 { hooks.wakeReceivers(waiters) }
                if case .failed = outcome { controlWaiting.removeAll() }
                return
            }
            controlWaiting.removeFirst()
        }
    }

    func close() {
        waiting.removeAll()
        controlWaiting.removeAll()
        broken = false
    }
}

