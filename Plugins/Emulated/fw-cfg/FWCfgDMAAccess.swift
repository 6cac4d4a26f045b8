/// The DMA access structure a guest puts in its RAM and hands over by writing its address to the
/// DMA port: 16 bytes, all big-endian — control, length, address. The device writes the control
/// word back when done: 0, or the error bit.
struct FWCfgDMAAccess: Equatable {
    static let size = 16

    /// Control bits; the upper 16 bits carry the selector for `select`.
    static let error: UInt32 = 0x01
    static let read: UInt32 = 0x02
    static let skip: UInt32 = 0x04
    static let select: UInt32 = 0x08
    static let write: UInt32 = 0x10

    var control: UInt32
    var length: UInt32
    var address: UInt64

    var selector: UInt16 { UInt16(control >> 16) }

    init(control: UInt32, length: UInt32, address: UInt64) {
        self.control = control
        self.length = length
        self.address = address
    }

    init(_ bytes: [UInt8]) {
        precondition(bytes.count == Self.size)
        func be(_ range: Range<Int>) -> UInt64 { bytes[range].reduce(0) { $0 << 8 | UInt64($1) } }
        control = UInt32(be(0..<4))
        length = UInt32(be(4..<8))
        address = be(8..<16)
    }

    var encoded: [UInt8] { bigEndian(UInt64(control), count: 4) + bigEndian(UInt64(length), count: 4) + bigEndian(address, count: 8) }

    /// "QEMU CFG", big-endian: what the DMA port reads, so a guest can tell it is there.
    static let portSignature = Array("QEMU CFG".utf8)
}

/// The low `count` bytes of `value`, most significant first.
func bigEndian(_ value: UInt64, count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64(count - 1 - $0))) }
}

func littleEndian(_ value: UInt64, count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}
