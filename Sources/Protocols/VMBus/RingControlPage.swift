/// The 4 KiB control page that starts each ring buffer (Linux `struct hv_ring_buffer`):
/// write_index 0, read_index 4, interrupt_mask 8, pending_send_sz 12, feature_bits 64. Data pages
/// follow; both indexes are byte offsets into the data area, which is the ring's size minus this
/// page.
public struct RingControlPage: Equatable, Sendable {
    public static let size = 4096
    public static let writeIndexOffset = 0
    public static let readIndexOffset = 4
    public static let interruptMaskOffset = 8
    public static let pendingSendSizeOffset = 12
    public static let featureBitsOffset = 64
    /// feature_bits bit 0: the side that set it honours pending_send_sz (flow control).
    public static let featurePendingSendSize: UInt32 = 1
    /// Bytes a decode needs: everything up to and including feature_bits.
    public static let fieldsSize = featureBitsOffset + 4

    public var writeIndex: UInt32
    public var readIndex: UInt32
    /// Non-zero: the reader is draining and does not want to be signalled.
    public var interruptMask: UInt32
    /// Non-zero: the writer is blocked until this many bytes are free.
    public var pendingSendSize: UInt32
    public var featureBits: UInt32

    public init(writeIndex: UInt32 = 0, readIndex: UInt32 = 0, interruptMask: UInt32 = 0,
                pendingSendSize: UInt32 = 0, featureBits: UInt32 = 0) {
        self.writeIndex = writeIndex
        self.readIndex = readIndex
        self.interruptMask = interruptMask
        self.pendingSendSize = pendingSendSize
        self.featureBits = featureBits
    }

    /// Decodes the fields from the start of a control page (at least `fieldsSize` bytes, at most
    /// a page).
    public static func decode(_ bytes: [UInt8]) throws(VMBusWireError) -> RingControlPage {
        guard bytes.count <= size else { throw .oversized(structure: "RingControlPage", maximum: size, actual: bytes.count) }
        var r = ByteReader(bytes, structure: "RingControlPage")
        try r.require(fieldsSize)
        let write = try r.u32(), read = try r.u32(), mask = try r.u32(), pending = try r.u32()
        try r.skip(featureBitsOffset - 16)
        return RingControlPage(writeIndex: write, readIndex: read, interruptMask: mask, pendingSendSize: pending,
                               featureBits: try r.u32())
    }

    /// A whole control page with these fields and zeros elsewhere.
    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.u32(writeIndex)
        w.u32(readIndex)
        w.u32(interruptMask)
        w.u32(pendingSendSize)
        w.zeros(Self.featureBitsOffset - 16)
        w.u32(featureBits)
        w.zeros(Self.size - Self.fieldsSize)
        return w.bytes
    }
}
