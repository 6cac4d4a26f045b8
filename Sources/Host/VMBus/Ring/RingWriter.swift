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
        let outcome = try writeBatch([OutgoingRingPacket(type: type, flags: flags, transactionID: transactionID,
                                                         header: header, payload: payload)])
        return outcome.written == 1 ? .written(signalReader: outcome.signalReader) : .full
    }

    /// Writes `packets` in order until one does not fit (that one then has `pending_send_sz` set
    /// for it, as a single write would). Every packet is checked before any is written, so a
    /// malformed one writes nothing. The write index is published once for the packets placed
    /// (twice when the ring filled up on the way), and `signalReader` covers the whole batch:
    /// the reader must be woken if it had consumed everything before any publication of this
    /// batch and has not masked interrupts, the same rule as for one packet.
    public mutating func writeBatch(_ packets: [OutgoingRingPacket]) throws(RingError) -> RingBatchOutcome {
        var encoded: [[UInt8]] = []
        encoded.reserveCapacity(packets.count)
        for packet in packets {
            let bytes = try Self.encode(packet)
            // Strictly less than the data area: a ring filled to the last byte would read as empty.
            guard bytes.count + PacketTrailer.size < Int(layout.dataSize) else {
                throw .packetTooLarge(bytes.count + PacketTrailer.size)
            }
            encoded.append(bytes)
        }
        guard !encoded.isEmpty else { return RingBatchOutcome(written: 0, signalReader: false) }

        var free = try bytesFree()
        var cursor = writeIndex, placed: UInt32 = 0
        var written = 0, signal = false
        for bytes in encoded {
            let total = UInt32(bytes.count + PacketTrailer.size)
            if total >= free {
                // Publish what is placed so the guest can drain it, then ask to be signalled once
                // this packet fits (free must exceed total, and free moves in 8-byte steps), and
                // check again in case the guest read everything in between.
                if placed > 0 {
                    signal = try publish(cursor) || signal
                    placed = 0
                }
                try layout.setControl(RingControlPage.pendingSendSizeOffset, total + 8, in: memory)
                waitingForSpace = true
                atomicMemoryFence(ordering: .sequentiallyConsistent)
                free = try bytesFree()
                guard total < free else { break }
            }
            if waitingForSpace {
                try layout.setControl(RingControlPage.pendingSendSizeOffset, 0, in: memory)
                waitingForSpace = false
            }
            var w = ByteWriter(capacity: Int(total))
            w.bytes(bytes)
            w.u64(PacketTrailer.value(startIndex: cursor))
            try layout.write(w.bytes, at: cursor, to: memory)
            cursor = UInt32((UInt64(cursor) + UInt64(total)) % UInt64(layout.dataSize))
            free -= total
            placed += total
            written += 1
        }
        if placed > 0 { signal = try publish(cursor) || signal }
        return RingBatchOutcome(written: written, signalReader: signal)
    }

    /// Publishes `index` as the write index; true when the reader must be signalled: interrupts
    /// unmasked and its read index where this publication's packets begin (it had drained the
    /// ring and may be going idle).
    private mutating func publish(_ index: UInt32) throws(RingError) -> Bool {
        let oldWrite = writeIndex
        writeIndex = index
        // The packets must be visible before the index that publishes them.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        try layout.setControl(RingControlPage.writeIndexOffset, writeIndex, in: memory)
        // And the index before the mask/read-index check, or a reader going idle is missed.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let mask = try layout.control(RingControlPage.interruptMaskOffset, from: memory)
        let read = try layout.control(RingControlPage.readIndexOffset, from: memory)
        return mask == 0 && read == oldWrite
    }

    /// Descriptor, header, payload and padding (no trailer), or why the packet is malformed.
    public static func encode(_ packet: OutgoingRingPacket) throws(RingError) -> [UInt8] {
        guard packet.header.count % 8 == 0 else {
            throw .invalidPacket("header of \(packet.header.count) bytes is not 8-byte aligned")
        }
        let dataOffset = PacketDescriptor.size + packet.header.count
        let length = (dataOffset + packet.payload.count + 7) & ~7
        guard let offset8 = UInt16(exactly: dataOffset / 8), let length8 = UInt16(exactly: length / 8) else {
            throw .invalidPacket("packet of \(length) bytes exceeds the descriptor's 16-bit length")
        }
        var w = ByteWriter(capacity: length)
        PacketDescriptor(type: packet.type, dataOffset8: offset8, length8: length8, flags: packet.flags,
                         transactionID: packet.transactionID).encode(into: &w)
        w.bytes(packet.header)
        w.bytes(packet.payload)
        w.zeros(length - dataOffset - packet.payload.count)
        return w.bytes
    }
}

/// One packet for `RingWriter.writeBatch`: `header` is the type-specific part between the
/// descriptor and the payload (a transfer-page packet's range list; a multiple of 8 bytes), so
/// the descriptor's offset8 is (16 + header) / 8.
public struct OutgoingRingPacket: Sendable, Equatable {
    public var type: UInt16
    public var flags: UInt16
    public var transactionID: UInt64
    public var header: [UInt8]
    public var payload: [UInt8]

    public init(type: UInt16, flags: UInt16 = 0, transactionID: UInt64, header: [UInt8] = [], payload: [UInt8]) {
        self.type = type
        self.flags = flags
        self.transactionID = transactionID
        self.header = header
        self.payload = payload
    }
}

/// What a batch write did: how many packets went in (the rest did not fit: retry them after the
/// guest's next signal) and whether the guest must be signalled, once, for all of them.
public struct RingBatchOutcome: Sendable, Equatable {
    public var written: Int
    public var signalReader: Bool
}
