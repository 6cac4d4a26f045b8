/// One guest access to a small register block, as the byte lanes it covers. Like the ISA bus, a
/// wider access at an offset reaches the consecutive registers; lanes past the block's end are
/// not this device's (reads leave them at the host's all-ones, writes to them go nowhere).
struct ByteLanes {
    /// The lanes inside the block, as a mask over the block's little-endian value.
    let mask: UInt64
    /// The written data moved to the block's byte positions, already masked.
    let value: UInt64
    private let shift: UInt64
    private let accessMask: UInt64

    init(offset: UInt64, size: Int, blockLength: Int, data: UInt64) {
        let start = Int(min(offset, UInt64(blockLength)))
        let lanes = max(0, min(size, blockLength - start))
        accessMask = lanes >= 8 ? .max : (UInt64(1) << UInt64(8 * lanes)) - 1
        shift = UInt64(8 * start)
        mask = accessMask << shift
        value = (data & accessMask) << shift
    }

    /// `data` (preset to all ones by the host) with the covered lanes taken from `block`.
    func read(_ block: UInt64, into data: UInt64) -> UInt64 {
        data & ~accessMask | (block >> shift) & accessMask
    }

    /// The 16-bit register at byte `position` of the block: the bits written and their mask.
    func register16(at position: Int) -> (value: UInt16, mask: UInt16) {
        (UInt16(truncatingIfNeeded: value >> UInt64(8 * position)), UInt16(truncatingIfNeeded: mask >> UInt64(8 * position)))
    }
}
