import Synchronization
import VMBusProtocol

/// What a write did: written (and whether the guest must be signalled), or the ring lacks room
/// and the host asked the guest, through `pending_send_sz`, to signal when it has.
public enum RingWriteOutcome: Equatable, Sendable {
    case written(signalReader: Bool)
    case full
}

/// The host's side of a host-to-guest ring: it produces packets the guest consumes.
///
/// The host keeps its own write index and only publishes it; the guest's read index is re-read and
/// validated on every write. Packets are 8-byte aligned, followed by the u64 trailer, and the ring
/// is never filled completely (equal indexes mean empty).
public struct RingWriter: Sendable {
    public let layout: RingLayout
    let memory: any GuestMemoryAccess
    public private(set) var writeIndex: UInt32
    /// Whether the last write found the ring full and set `pending_send_sz`.
    private var waitingForSpace = false

    /// Takes over the ring and declares that the host honours `pending_send_sz` (feature bit 0 of
    /// the host-to-guest ring is the host's to set).
    public init(layout: RingLayout, memory: any GuestMemoryAccess) throws(RingError) {
        self.layout = layout
        self.memory = memory
        let start = try layout.control(RingControlPage.writeIndexOffset, from: memory)
        writeIndex = try layout.validIndex(start, "initial write index")
        let features = try layout.control(RingControlPage.featureBitsOffset, from: memory)
        try layout.setControl(RingControlPage.featureBitsOffset, features | RingControlPage.featurePendingSendSize, in: memory)
    }

    /// Free bytes as the writer sees them (the trailer and the one-byte gap included).
    public func bytesFree() throws(RingError) -> UInt32 {
        let read = try layout.validIndex(try layout.control(RingControlPage.readIndexOffset, from: memory), "read index")
        return layout.dataSize - layout.used(read: read, write: writeIndex)
    }

    /// Writes one packet: descriptor, `header` (bytes between descriptor and payload, e.g. a
    /// transfer-page header; a multiple of 8), `payload` padded to 8 bytes, trailer.
    public mutating func write(type: UInt16, flags: UInt16 = 0, transactionID: UInt64,
                               header: [UInt8] = [], payload: [UInt8]) throws(RingError) -> RingWriteOutcome {
        guard header.count % 8 == 0 else { throw .invalidPacket("header of \(header.count) bytes is not 8-byte aligned") }
        let dataOffset = PacketDescriptor.size + header.count
        let length = (dataOffset + payload.count + 7) & ~7
        guard let offset8 = UInt16(exactly: dataOffset / 8), let length8 = UInt16(exactly: length / 8) else {
            throw .invalidPacket("packet of \(length) bytes exceeds the descriptor's 16-bit length")
        }
        let total = length + PacketTrailer.size
        // Strictly less than free: a ring filled to the last byte would read as empty.
        guard total < Int(layout.dataSize) else { throw .packetTooLarge(total) }

        if UInt32(total) >= (try bytesFree()) {
            // Ask to be signalled once the write fits: free must exceed total, and free moves in
            // 8-byte steps. Then check again, in case the guest read everything in between.
            try layout.setControl(RingControlPage.pendingSendSizeOffset, UInt32(total + 8), in: memory)
            waitingForSpace = true
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            guard UInt32(total) < (try bytesFree()) else { return .full }
        }
        if waitingForSpace {
            try layout.setControl(RingControlPage.pendingSendSizeOffset, 0, in: memory)
            waitingForSpace = false
        }

        var w = ByteWriter(capacity: total)
        PacketDescriptor(type: type, dataOffset8: offset8, length8: length8, flags: flags, transactionID: transactionID).encode(into: &w)
        w.bytes(header)
        w.bytes(payload)
        w.zeros(length - dataOffset - payload.count)
        let oldWrite = writeIndex
        w.u64(PacketTrailer.value(startIndex: oldWrite))
        try layout.write(w.bytes, at: oldWrite, to: memory)

        writeIndex = UInt32((UInt64(oldWrite) + UInt64(total)) % UInt64(layout.dataSize))
        // The packet must be visible before the index that publishes it.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        try layout.setControl(RingControlPage.writeIndexOffset, writeIndex, in: memory)
        // And the index before the mask/read-index check, or a reader going idle is missed.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let mask = try layout.control(RingControlPage.interruptMaskOffset, from: memory)
        let read = try layout.control(RingControlPage.readIndexOffset, from: memory)
        return .written(signalReader: mask == 0 && read == oldWrite)
    }
}
