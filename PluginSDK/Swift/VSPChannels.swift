import VeneerPluginABI

// ABI 1.7: what storage- and network-class VSPs need of VMBus beyond the echo VSP's channel:
// offers at run time and rescinds, sub-channels, GPA-direct buffers as guest-RAM segments, GPADL
// pages by id, batched writes with one guest signal, and guest RAM mapped for direct I/O.
//
// Unsafe-pointer invariants of this file: every buffer handed to the host lives for the duration
// of the call (temporary allocations or arrays pinned by withUnsafe*), and the host writes at
// most the capacities passed with them; mapGuest's pointer is the host's, valid until the
// instance is destroyed, for the length asked.

/// A run of guest-physical bytes, entirely guest RAM: one `mapGuest` reaches all of it.
public struct GuestSegment: Sendable, Equatable {
    public var gpa: UInt64
    public var length: UInt64

    public init(gpa: UInt64, length: UInt64) {
        self.gpa = gpa
        self.length = length
    }
}

/// A packet read with `readSegmentedPacket`: a GPA-direct packet (type 9) arrives as its payload
/// and its buffers as `segments` (in the guest's order, adjacent pages merged, lengths summing to
/// the ranges' byte counts) with an empty `header`; any other packet as `vmbus_read` gives it,
/// its type-specific header before the payload, with no segments.
public struct SegmentedPacket: Sendable, Equatable {
    public var type: UInt16
    public var flags: UInt16
    public var transactionID: UInt64
    /// Non-GPA-direct packets only.
    public var header: [UInt8]
    public var payload: [UInt8]
    /// GPA-direct packets only.
    public var segments: [GuestSegment]
    public var completionRequested: Bool { flags & UInt16(VENEER_VMBUS_COMPLETION_REQUESTED) != 0 }

    public init(type: UInt16, flags: UInt16, transactionID: UInt64, header: [UInt8], payload: [UInt8], segments: [GuestSegment]) {
        self.type = type
        self.flags = flags
        self.transactionID = transactionID
        self.header = header
        self.payload = payload
        self.segments = segments
    }
}

/// One packet for `writePackets`. `header` is the type-specific part between descriptor and
/// payload (a transfer-page packet's {u16 set id; u8 sender owns; u8 reserved; u32 range count;
/// ranges}), a multiple of 8 bytes.
public struct OutgoingPacket: Sendable, Equatable {
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

extension HostServices {
    /// Whether the host's table reaches the ABI 1.7 VMBus calls.
    public var hasVSPChannels: Bool {
        Int(api.pointee.struct_size) >= MemoryLayout<veneer_host_api>.offset(of: \.vmbus_write_batch).map { $0 + 8 } ?? Int.max
            && api.pointee.abi_minor >= 7
    }

    /// The next packet of `channel` with GPA-direct buffers as segments (see `SegmentedPacket`),
    /// or nil when the ring is empty. Throws when the guest broke the ring or the channel is not
    /// open (wait for it to reopen).
    public func readSegmentedPacket(channel: UInt32) throws(ChannelReadError) -> SegmentedPacket? {
        guard hasVSPChannels, let read = api.pointee.vmbus_read_segments else { throw .unusable("the host has no ABI 1.7 VMBus") }
        var byteCapacity = 4096, segmentCapacity = 256
        // The guest may rewrite the packet between two calls: a few tries, then give up.
        for _ in 0..<4 {
            var info = veneer_vmbus_packet()
            info.struct_size = UInt32(MemoryLayout<veneer_vmbus_packet>.size)
            var count: UInt32 = 0
            let outcome = withUnsafeTemporaryAllocation(byteCount: byteCapacity, alignment: 8) { bytes in
                withUnsafeTemporaryAllocation(of: veneer_guest_segment.self, capacity: segmentCapacity) { segments in
                    let status = read(host, channel, &info, bytes.baseAddress, bytes.count, segments.baseAddress,
                                      UInt32(segments.count), &count)
                    guard status == veneer_status(VENEER_OK) else { return (status, nil as SegmentedPacket?) }
                    let header = Int(info.header_length), payload = Int(info.payload_length)
                    guard header + payload <= bytes.count, Int(count) <= segments.count else {
                        return (veneer_status(VENEER_EIO), nil)
                    }
                    let all = UnsafeRawBufferPointer(bytes)
                    return (status, SegmentedPacket(
                        type: info.type, flags: info.flags, transactionID: info.transaction_id,
                        header: Array(all[0..<header]), payload: Array(all[header..<header + payload]),
                        segments: segments.prefix(Int(count)).map { GuestSegment(gpa: $0.gpa, length: $0.length) }))
                }
            }
            switch outcome.0 {
            case veneer_status(VENEER_OK): return outcome.1
            case veneer_status(VENEER_EAGAIN): return nil
            case veneer_status(VENEER_ENOSPC):
                byteCapacity = max(byteCapacity, Int(info.header_length) + Int(info.payload_length))
                segmentCapacity = max(segmentCapacity, Int(count))
            default: throw .unusable(statusName(outcome.0))
            }
        }
        throw .unusable("the packet kept changing size while being read")
    }

    /// Offers `count` more sub-channels of the open primary `primary` (when the guest asked for
    /// them); their ids, each reported opened by `channelOpened` once the guest opens it. They
    /// live as long as the primary stays open: when it closes, each open one is closed
    /// (`channelClosed`) and all are withdrawn; their ids are invalid afterwards.
    public func offerSubchannels(primary: UInt32, count: Int) throws(PluginError) -> [UInt32] {
        guard count > 0 else { return [] }
        guard count <= 64 else { throw PluginError("\(count) sub-channels asked of channel \(primary): at most 64") }
        guard hasVSPChannels else { throw PluginError("the host does not offer sub-channels (ABI 1.7)") }
        var ids = [UInt32](repeating: 0, count: count)
        let status = ids.withUnsafeMutableBufferPointer { api.pointee.vmbus_offer_subchannels?(host, primary, UInt32(count), $0.baseAddress) }
        try check(status, "offer \(count) sub-channels of channel \(primary)")
        return ids
    }

    /// Withdraws a primary channel this device offered (hot remove): an open one is closed first
    /// (`channelClosed` follows), its sub-channels go with it, and its id is invalid afterwards.
    public func rescindChannel(_ channel: UInt32) throws(PluginError) {
        guard hasVSPChannels else { throw PluginError("the host does not offer rescinds (ABI 1.7)") }
        try check(api.pointee.vmbus_rescind?(host, channel), "rescind channel \(channel)")
    }

    /// The pages of GPADL `gpadl` the guest created for `channel` (or for its primary, when
    /// `channel` is a sub-channel) as guest-RAM segments: netvsc's receive and send buffers.
    public func gpadlSegments(channel: UInt32, gpadl: UInt32) throws(PluginError) -> [GuestSegment] {
        guard hasVSPChannels, let call = api.pointee.vmbus_gpadl_segments else {
            throw PluginError("the host does not offer GPADL segments (ABI 1.7)")
        }
        var count: UInt32 = 0
        var status = call(host, channel, gpadl, nil, 0, &count)
        guard status == veneer_status(VENEER_ENOSPC) else {
            try check(status, "read GPADL \(gpadl) of channel \(channel)")
            return []
        }
        var segments = [veneer_guest_segment](repeating: veneer_guest_segment(), count: Int(count))
        status = segments.withUnsafeMutableBufferPointer { call(host, channel, gpadl, $0.baseAddress, UInt32($0.count), &count) }
        try check(status, "read GPADL \(gpadl) of channel \(channel)")
        return segments.prefix(Int(count)).map { GuestSegment(gpa: $0.gpa, length: $0.length) }
    }

    /// Writes `packets` in order until one does not fit, signalling the guest at most once.
    /// `.written`: all went in; `.full`: the first `written` did, retry the rest after the next
    /// `channelSignalled`; `.failed`: a malformed packet (nothing written) or a channel that is
    /// not open.
    public func writePackets(channel: UInt32, _ packets: [OutgoingPacket]) -> (written: Int, outcome: WriteOutcome) {
        guard !packets.isEmpty else { return (0, .written) }
        guard hasVSPChannels, let call = api.pointee.vmbus_write_batch else { return (0, .failed("the host has no ABI 1.7 VMBus")) }
        // Headers and payloads side by side in one buffer, so one pinned pointer serves them all.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(packets.reduce(0) { $0 + $1.header.count + $1.payload.count })
        var offsets: [(header: Int, payload: Int)] = []
        offsets.reserveCapacity(packets.count)
        for packet in packets {
            let header = bytes.count
            bytes += packet.header
            offsets.append((header, bytes.count))
            bytes += packet.payload
        }
        var written: UInt32 = 0
        let status = bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress
            var sends = [veneer_vmbus_send]()
            sends.reserveCapacity(packets.count)
            for (packet, offset) in zip(packets, offsets) {
                var s = veneer_vmbus_send()
                s.struct_size = UInt32(MemoryLayout<veneer_vmbus_send>.size)
                s.type = packet.type
                s.flags = packet.flags
                s.transaction_id = packet.transactionID
                s.header = packet.header.isEmpty ? nil : base.map { UnsafeRawPointer($0 + offset.header) }
                s.header_length = UInt32(truncatingIfNeeded: packet.header.count)
                s.payload = packet.payload.isEmpty ? nil : base.map { UnsafeRawPointer($0 + offset.payload) }
                s.payload_length = UInt64(packet.payload.count)
                sends.append(s)
            }
            return sends.withUnsafeBufferPointer {
                call(host, channel, $0.baseAddress, UInt32($0.count), UInt32(MemoryLayout<veneer_vmbus_send>.stride), &written)
            }
        }
        switch status {
        case veneer_status(VENEER_OK): return (Int(written), .written)
        case veneer_status(VENEER_ENOSPC): return (Int(written), .full)
        default: return (Int(written), .failed(statusName(status)))
        }
    }

    /// A pointer to [gpa, gpa + length) of guest RAM for direct I/O (a segment from
    /// `readSegmentedPacket` or `gpadlSegments` maps whole), or nil when the range is not inside
    /// one piece of guest RAM. Valid until the instance is destroyed.
    public func mapGuest(_ gpa: UInt64, length: UInt64, writable: Bool) -> UnsafeMutableRawBufferPointer? {
        guard length > 0, length <= UInt64(Int.max),
              let pointer = api.pointee.mem_map?(host, gpa, length, UInt32(VENEER_MAP_READ) | (writable ? UInt32(VENEER_MAP_WRITE) : 0))
        else { return nil }
        return UnsafeMutableRawBufferPointer(start: pointer, count: Int(length))
    }
}
