import Synchronization
import VMBusProtocol

/// The host's side of a guest-to-host ring: it consumes what the guest wrote.
///
/// The host keeps its own read index and only publishes it; the guest's write index is re-read and
/// validated on every call. Any inconsistency (index outside the data area, a descriptor whose
/// lengths exceed what was published) is `RingError.corrupt`: fatal for the channel, never a crash.
public struct RingReader: Sendable {
    public let layout: RingLayout
    let memory: any GuestMemoryAccess
    let maxGPADirectRanges: Int
    public private(set) var readIndex: UInt32

    public init(layout: RingLayout, memory: any GuestMemoryAccess, maxGPADirectRanges: Int) throws(RingError) {
        self.layout = layout
        self.memory = memory
        self.maxGPADirectRanges = maxGPADirectRanges
        let start = try layout.control(RingControlPage.readIndexOffset, from: memory)
        readIndex = try layout.validIndex(start, "initial read index")
    }

    /// Bytes the guest has published and the host not yet consumed.
    public func bytesAvailable() throws(RingError) -> UInt32 {
        let write = try layout.validIndex(try layout.control(RingControlPage.writeIndexOffset, from: memory), "write index")
        return layout.used(read: readIndex, write: write)
    }

    /// The packet at the read index, or nil when the ring is empty. Does not consume it.
    public func peek() throws(RingError) -> VMBusPacket? {
        let available = try bytesAvailable()
        if available == 0 { return nil }
        let minimum = PacketDescriptor.size + PacketTrailer.size
        guard available >= UInt32(minimum) else { throw .corrupt("\(available) bytes published, less than a packet") }
        let descriptorBytes = try layout.read(at: readIndex, count: PacketDescriptor.size, from: memory)
        let descriptor: PacketDescriptor
        do throws(VMBusWireError) {
            descriptor = try PacketDescriptor.decode(descriptorBytes)
        } catch {
            throw .corrupt("descriptor: \(error)")
        }
        let length = descriptor.length, offset = descriptor.dataOffset
        guard descriptor.dataOffset8 >= 2, offset <= length else {
            throw .corrupt("descriptor offset8 \(descriptor.dataOffset8) len8 \(descriptor.length8)")
        }
        guard length + PacketTrailer.size <= Int(available) else {
            throw .corrupt("packet of \(length) bytes but only \(available) published")
        }
        let bytes = try layout.read(at: readIndex, count: length, from: memory)
        let kind = try classify(bytes, descriptor)
        return VMBusPacket(descriptor: descriptor, kind: kind, payload: Array(bytes[offset...]),
                           ringOffset: readIndex, ringLength: UInt32(length + PacketTrailer.size))
    }

    /// Consumes `packet` (which must be the one `peek` returned at the current read index) and
    /// publishes the new read index. Returns true when the guest, blocked as a writer, should be
    /// signalled: it declared flow control (feature bit 0), asked for `pending_send_sz` bytes, and
    /// this read made at least that much free where there was no more than that before.
    public mutating func advance(past packet: VMBusPacket) throws(RingError) -> Bool {
        guard packet.ringOffset == readIndex else { throw .stalePacket }
        let available = try bytesAvailable()
        guard packet.ringLength <= available else { throw .corrupt("write index moved behind a published packet") }
        let freeBefore = layout.dataSize - available
        readIndex = UInt32((UInt64(readIndex) + UInt64(packet.ringLength)) % UInt64(layout.dataSize))
        // The guest may reuse the space once it sees the index: finish reading first.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        try layout.setControl(RingControlPage.readIndexOffset, readIndex, in: memory)
        // Read pending_send_sz only after publishing, or a writer that blocks in between is missed.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let features = try layout.control(RingControlPage.featureBitsOffset, from: memory)
        guard features & RingControlPage.featurePendingSendSize != 0 else { return false }
        let pending = try layout.control(RingControlPage.pendingSendSizeOffset, from: memory)
        let freeAfter = freeBefore + packet.ringLength
        return pending != 0 && freeBefore <= pending && freeAfter >= pending
    }

    /// Reads and consumes the next packet; `signalWriter` as for `advance(past:)`.
    public mutating func read() throws(RingError) -> (packet: VMBusPacket, signalWriter: Bool)? {
        guard let packet = try peek() else { return nil }
        return (packet, try advance(past: packet))
    }

    /// Masks (or unmasks) the guest's "data arrived" signals while the host drains the ring.
    /// After unmasking, check `bytesAvailable()` again: the guest may have written in between.
    public func setInterruptMask(_ masked: Bool) throws(RingError) {
        try layout.setControl(RingControlPage.interruptMaskOffset, masked ? 1 : 0, in: memory)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    private func classify(_ bytes: [UInt8], _ descriptor: PacketDescriptor) throws(RingError) -> VMBusPacket.Kind {
        switch descriptor.packetType {
        case .dataInBand: return .inBand
        case .completion: return .completion
        case .dataUsingGPADirect:
            let header: GPADirectHeader
            do throws(VMBusWireError) {
                header = try GPADirectHeader.decode(packet: bytes, descriptor: descriptor, maxRanges: maxGPADirectRanges)
            } catch {
                throw .corrupt("GPA-direct ranges: \(error)")
            }
            if let pfn = memory.firstPageOutsideRAM(header.ranges) {
                throw .corrupt("GPA-direct PFN 0x\(String(pfn, radix: 16)) is not guest RAM")
            }
            return .gpaDirect(header.ranges)
        default:
            return .other(descriptor.type)
        }
    }
}
