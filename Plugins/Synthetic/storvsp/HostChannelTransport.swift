import VeneerPluginKit

/// A channel's transport on the real host: the SDK's ABI 1.7 calls (GPA-direct packets read as
/// guest-RAM segments, replies written in one batch with one signal, guest RAM mapped for I/O).
final class HostChannelTransport: ChannelTransport {
    let host: HostServices
    let channel: UInt32

    init(host: HostServices, channel: UInt32) {
        self.host = host
        self.channel = channel
    }

    func readPacket() throws(ChannelBroken) -> IncomingPacket? {
        let packet: SegmentedPacket?
        do { packet = try host.readSegmentedPacket(channel: channel) } catch {
            throw ChannelBroken(description: "\(error)")
        }
        guard let packet else { return nil }
        // A GPA-direct packet's ranges arrive as segments and its payload alone; any other
        // packet's type-specific header is not part of the storvsp payload.
        return IncomingPacket(type: packet.type, flags: packet.flags, transactionID: packet.transactionID,
                              payload: packet.payload,
                              segments: packet.segments.map { GuestSegmentRange(gpa: $0.gpa, length: $0.length) })
    }

    func write(_ packets: [ReplyPacket]) -> WriteResult {
        let (written, outcome) = host.writePackets(channel: channel, packets.map {
            OutgoingPacket(type: $0.type, transactionID: $0.transactionID, payload: $0.payload)
        })
        switch outcome {
        case .written: return .written(written, full: false)
        case .full: return .written(written, full: true)
        case .failed(let why): return .failed(why)
        }
    }

    func mapGuest(_ gpa: UInt64, length: UInt64, writable: Bool) -> UnsafeMutableRawBufferPointer? {
        host.mapGuest(gpa, length: length, writable: writable)
    }
}
