import VMBusProtocol

/// A guest physical address descriptor list: guest pages the guest lets the host use for one
/// channel (ring buffers, receive/send buffers). Built from a GPADL_HEADER and any number of
/// GPADL_BODY messages; validated once complete.
struct GPADL {
    let id: UInt32
    /// The relid of the channel the guest created it for.
    let owner: UInt32
    let rangeCount: Int
    /// range_buflen / 8: range header words plus PFNs.
    let expectedWords: Int
    private(set) var words: [UInt64] = []
    /// Set once every word arrived and the ranges validated.
    private(set) var ranges: [GPARange]?
    /// Held by an open channel's rings: teardown is refused until the channel closes.
    var usedByRing = false

    var isComplete: Bool { ranges != nil }
    /// What it is charged against the partition budget: the words it holds (PFNs plus one header
    /// per range), known from the header before any arrive.
    var budget: Int { expectedWords }

    /// Checks the header's counts against the limits before anything is allocated for it.
    init(header: GPADLHeader, limits: VMBusLimits) throws(VMBusHostFailure) {
        let count = Int(header.rangeCount), length = Int(header.rangeBufferLength)
        guard count >= 1 else { throw .init("GPADL \(header.gpadl): rangecount 0") }
        guard length % 8 == 0, length / 8 >= 2 * count else {
            throw .init("GPADL \(header.gpadl): range_buflen \(length) cannot hold \(count) ranges")
        }
        guard length / 8 - count <= limits.maxPFNsPerGPADL else {
            throw .init("GPADL \(header.gpadl): up to \(length / 8 - count) PFNs, limit \(limits.maxPFNsPerGPADL)")
        }
        id = header.gpadl
        owner = header.childRelid
        rangeCount = count
        expectedWords = length / 8
        words.reserveCapacity(expectedWords)
    }

    /// Adds words from a header or body message. Words past `range_buflen` are ignored (some
    /// clients pad messages to their maximum size). Returns true when all words are present.
    mutating func append(_ more: [UInt64]) -> Bool {
        words += more.prefix(expectedWords - words.count)
        return words.count == expectedWords
    }

    /// Parses the complete word list into ranges and checks every PFN is guest RAM.
    mutating func finish(memory: any GuestMemoryAccess) throws(VMBusHostFailure) {
        let parsed: [GPARange]
        do throws(VMBusWireError) {
            parsed = try GPARange.ranges(count: rangeCount, words: words[...])
        } catch {
            throw .init("GPADL \(id): \(error)")
        }
        if let pfn = memory.firstPageOutsideRAM(parsed) {
            throw .init("GPADL \(id): PFN 0x\(String(pfn, radix: 16)) is not guest RAM")
        }
        ranges = parsed
        words = []
    }

    /// The pages of a ring-buffer GPADL: one range, starting at a page boundary, whole pages.
    var ringPages: [UInt64]? {
        guard let ranges, ranges.count == 1, let range = ranges.first,
              range.byteOffset == 0, range.byteCount % UInt32(RingLayout.pageSize) == 0
        else { return nil }
        return range.pfns
    }
}

/// A refused guest request: the reason goes to the log, the guest gets an error status or
/// nothing.
struct VMBusHostFailure: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
