import VMBusProtocol

/// A run of guest-physical bytes a VSP may use directly (ABI 1.7's `veneer_guest_segment`):
/// always inside one piece of guest RAM, so one `mem_map` reaches all of it.
public struct VMBusSegment: Sendable, Equatable {
    public var gpa: UInt64
    public var length: UInt64

    public init(gpa: UInt64, length: UInt64) {
        self.gpa = gpa
        self.length = length
    }

    /// The segments of guest-physical ranges, in the guest's order: a range's first page starts
    /// at its byte offset, its lengths sum to its byte count, and physically adjacent pages are
    /// merged as long as the run stays inside one piece of guest RAM. nil when a page is not
    /// guest RAM or a range names fewer pages than its byte count needs (callers validated the
    /// ranges already; this is the last word before a VSP gets pointers from them).
    public static func segments(of ranges: [GPARange], memory: any GuestMemoryAccess) -> [VMBusSegment]? {
        let page = UInt64(GPARange.pageSize)
        var segments: [VMBusSegment] = []
        for range in ranges {
            var left = UInt64(range.byteCount)
            var offset = UInt64(range.byteOffset)
            guard offset < page else { return nil }
            for pfn in range.pfns where left > 0 {
                guard pfn <= UInt64.max >> 12 else { return nil }
                let start = pfn << 12 + offset
                let length = min(left, page - offset)
                guard memory.isRAM(start, length: length) else { return nil }
                if let last = segments.last, last.gpa + last.length == start,
                   memory.isRAM(last.gpa, length: last.length + length) {
                    segments[segments.count - 1].length += length
                } else {
                    segments.append(VMBusSegment(gpa: start, length: length))
                }
                left -= length
                offset = 0
            }
            guard left == 0 else { return nil }
        }
        return segments
    }
}
