/// One placement region being filled: tables appended at aligned offsets, and the region's whole
/// contents (zeros between and after the tables) for writing, so that stale bytes from a previous
/// boot can never pass for a table.
struct FirmwareRegion {
    let name: String
    let range: Range<UInt64>
    private(set) var bytes: [UInt8] = []
    private(set) var tables: [FirmwareLayout.Table] = []

    init(name: String, range: Range<UInt64>) {
        self.name = name
        self.range = range
    }

    var capacity: Int { range.count }

    /// The address the next table with this alignment would get.
    func nextAddress(alignment: UInt64) -> UInt64 {
        range.lowerBound + UInt64(alignedOffset(alignment))
    }

    /// Appends `table` at the next `alignment` boundary (of the guest address) and returns its address.
    mutating func place(_ table: [UInt8], signature: String, alignment: UInt64) throws(FirmwareError) -> UInt64 {
        let offset = alignedOffset(alignment)
        guard offset <= capacity, table.count <= capacity - offset else {
            throw .doesNotFit(region: name, needed: offset + table.count, available: capacity)
        }
        bytes += Array(repeating: 0, count: offset - bytes.count) + table
        let address = range.lowerBound + UInt64(offset)
        tables.append(FirmwareLayout.Table(signature: signature, address: address, size: table.count))
        return address
    }

    var contents: [UInt8] { bytes + Array(repeating: 0, count: capacity - bytes.count) }

    private func alignedOffset(_ alignment: UInt64) -> Int {
        let next = range.lowerBound + UInt64(bytes.count)
        let aligned = (next + alignment - 1) / alignment * alignment
        return Int(aligned - range.lowerBound)
    }
}
