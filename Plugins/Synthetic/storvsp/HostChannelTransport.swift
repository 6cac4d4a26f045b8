import VeneerPluginABI
import VeneerPluginKit

/// A channel's transport on the real host: the ABI 1.7 calls vmbus_read_segments,
/// vmbus_write_batch and mem_map. (The SDK's typed wrappers of these calls are being added; this
/// file is the one place that speaks the C ABI, and goes when they land.)
///
/// Invariants: every buffer handed to the host is a Swift array alive for the duration of the
/// call and its capacity is passed with it; nothing the host returns is used past the lengths it
/// reports, and those are checked against the capacities given.
final class HostChannelTransport: ChannelTransport {
    let host: HostServices
    let channel: UInt32
    private var payloadCapacity = 4096
    private var segmentCapacity = 64

    init(host: HostServices, channel: UInt32) {
        self.host = host
        self.channel = channel
    }

    func readPacket() throws(ChannelBroken) -> IncomingPacket? {
        let api = host.api.pointee
        guard api.abi_minor >= 7, let read = api.vmbus_read_segments else { throw ChannelBroken(description: "the host has no ABI 1.7 VMBus") }
        for _ in 0..<2 {
            var info = veneer_vmbus_packet()
            info.struct_size = UInt32(MemoryLayout<veneer_vmbus_packet>.size)
            var buffer = [UInt8](repeating: 0, count: payloadCapacity)
            var segments = [veneer_guest_segment](repeating: veneer_guest_segment(), count: segmentCapacity)
            var segmentCount: UInt32 = 0
            let status = buffer.withUnsafeMutableBytes { bytes in
                segments.withUnsafeMutableBufferPointer { segs in
                    read(host.host, channel, &info, bytes.baseAddress, bytes.count, segs.baseAddress, UInt32(segs.count), &segmentCount)
                }
            }
            switch status {
            case veneer_status(VENEER_OK):
                let header = Int(info.header_length), payload = Int(info.payload_length), count = Int(segmentCount)
                guard header + payload <= buffer.count, count <= segments.count else {
                    throw ChannelBroken(description: "the host reported a packet larger than its buffer")
                }
                return IncomingPacket(type: info.type, flags: info.flags, transactionID: info.transaction_id,
                                      payload: Array(buffer[header..<header + payload]),
                                      segments: segments.prefix(count).map { GuestSegmentRange(gpa: $0.gpa, length: $0.length) })
            case veneer_status(VENEER_EAGAIN):
                return nil
            case veneer_status(VENEER_ENOSPC):
                // Grow to what the host says the packet needs, then read it again.
                payloadCapacity = max(payloadCapacity, Int(info.header_length) + Int(info.payload_length))
                segmentCapacity = max(segmentCapacity, Int(segmentCount))
            default:
                throw ChannelBroken(description: statusName(status))
            }
        }
        throw ChannelBroken(description: "a packet larger than the host said")
    }

    func write(_ packets: [OutgoingPacket]) -> WriteResult {
        let api = host.api.pointee
        guard api.abi_minor >= 7, let batch = api.vmbus_write_batch else { return .failed("the host has no ABI 1.7 VMBus") }
        // All payloads in one array, pinned for the one call that writes them.
        let blob = packets.flatMap(\.payload)
        var written: UInt32 = 0
        let status = blob.withUnsafeBytes { bytes -> veneer_status in
            var offset = 0
            let sends = packets.map { packet -> veneer_vmbus_send in
                var send = veneer_vmbus_send()
                send.struct_size = UInt32(MemoryLayout<veneer_vmbus_send>.size)
                send.type = packet.type
                send.transaction_id = packet.transactionID
                send.payload = packet.payload.isEmpty ? nil : UnsafeRawPointer(bytes.baseAddress.map { $0 + offset })
                send.payload_length = UInt64(packet.payload.count)
                offset += packet.payload.count
                return send
            }
            return sends.withUnsafeBufferPointer {
                batch(host.host, channel, $0.baseAddress, UInt32($0.count), UInt32(MemoryLayout<veneer_vmbus_send>.stride), &written)
            }
        }
        switch status {
        case veneer_status(VENEER_OK): return .written(packets.count, full: false)
        case veneer_status(VENEER_ENOSPC): return .written(min(Int(written), packets.count), full: true)
        default: return .failed(statusName(status))
        }
    }

    func mapGuest(_ gpa: UInt64, length: UInt64, writable: Bool) -> UnsafeMutableRawBufferPointer? {
        guard length > 0, length <= UInt64(Int.max),
              let pointer = host.api.pointee.mem_map?(host.host, gpa, length,
                                                      UInt32(VENEER_MAP_READ | (writable ? VENEER_MAP_WRITE : 0)))
        else { return nil }
        return UnsafeMutableRawBufferPointer(start: pointer, count: Int(length))
    }
}
