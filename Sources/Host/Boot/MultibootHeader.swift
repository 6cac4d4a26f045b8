/// The Multiboot (v0.6.96) header of a kernel: found in the first 8192 bytes on a 4-byte boundary,
/// with a valid checksum, and only requirement flags Veneer can honour.
struct MultibootHeader {
    static let magic: UInt32 = 0x1BAD_B002
    static let searchLimit: UInt64 = 8192
    /// Bit 0: page-align modules (always done). Bit 1: memory information (always given).
    static let honouredRequirements: UInt32 = 0x0000_0003
    static let videoMode: UInt32 = 1 << 2
    static let requirementBits: UInt32 = 0x0000_FFFF
    /// Bit 16: the a.out kludge, the address fields below are valid.
    static let addressFields: UInt32 = 1 << 16

    /// Where the header starts in the file.
    let offset: UInt64
    let flags: UInt32
    /// The a.out kludge fields, when flag 16 is set.
    let addresses: AddressFields?

    struct AddressFields {
        let headerAddress: UInt32
        let loadAddress: UInt32
        let loadEndAddress: UInt32
        let bssEndAddress: UInt32
        let entryAddress: UInt32
    }

    init(_ file: BootFile) throws(BootError) {
        let limit = min(Self.searchLimit, file.size)
        var badChecksum: UInt64?
        var found: (offset: UInt64, flags: UInt32)?
        var at: UInt64 = 0
        while at + 12 <= limit {
            if try file.u32(at, "multiboot magic") == Self.magic {
                let flags = try file.u32(at + 4, "multiboot flags")
                let checksum = try file.u32(at + 8, "multiboot checksum")
                if Self.magic &+ flags &+ checksum == 0 {
                    found = (at, flags)
                    break
                }
                badChecksum = badChecksum ?? at
            }
            at += 4
        }
        guard let found else {
            if let bad = badChecksum {
                throw file.error("the multiboot header at offset \(hex(bad)) has a bad checksum (magic + flags + checksum must be 0 mod 2^32)")
            }
            throw file.error("no multiboot header (magic 0x1badb002 on a 4-byte boundary) in the first 8192 bytes")
        }
        offset = found.offset
        flags = found.flags
        if flags & Self.videoMode != 0 {
            throw file.error("the multiboot header requires a video mode (flag bit 2), and Veneer has no display to set one")
        }
        let unknown = flags & Self.requirementBits & ~Self.honouredRequirements
        guard unknown == 0 else {
            throw file.error("the multiboot header sets requirement flags \(hex(unknown)) that Veneer does not know; the spec says to refuse the kernel")
        }
        if flags & Self.addressFields != 0 {
            guard offset + 32 <= Self.searchLimit else {
                throw file.error("the multiboot header at \(hex(offset)) with address fields runs past the first 8192 bytes")
            }
            let what = "multiboot address fields"
            addresses = AddressFields(
                headerAddress: try file.u32(offset + 12, what), loadAddress: try file.u32(offset + 16, what),
                loadEndAddress: try file.u32(offset + 20, what), bssEndAddress: try file.u32(offset + 24, what),
                entryAddress: try file.u32(offset + 28, what))
        } else {
            addresses = nil
        }
    }

    /// The a.out kludge as one segment, with every address checked against the others and the
    /// file: load_addr <= header_addr, the header's file offset consistent with both, the loaded
    /// bytes inside the file, load_end <= bss_end, the entry inside what is loaded.
    func aoutSegment(_ a: AddressFields, _ file: BootFile) throws(BootError) -> (segment: LoadSegment, entry: UInt64) {
        let headerAddress = UInt64(a.headerAddress), loadAddress = UInt64(a.loadAddress)
        guard loadAddress <= headerAddress else {
            throw file.error("a.out kludge: load_addr \(hex(loadAddress)) is above header_addr \(hex(headerAddress))")
        }
        guard headerAddress - loadAddress <= offset else {
            throw file.error("a.out kludge: header_addr - load_addr = \(hex(headerAddress - loadAddress)) puts the load start before the file's beginning (the header is at offset \(hex(offset)))")
        }
        let fileOffset = offset - (headerAddress - loadAddress)
        let loadEnd: UInt64
        if a.loadEndAddress == 0 {
            loadEnd = loadAddress + (file.size - fileOffset)
        } else {
            loadEnd = UInt64(a.loadEndAddress)
            guard loadEnd > loadAddress else {
                throw file.error("a.out kludge: load_end_addr \(hex(loadEnd)) is not above load_addr \(hex(loadAddress))")
            }
            guard loadEnd - loadAddress <= file.size - fileOffset else {
                throw file.error("truncated: a.out kludge loads \(hex(loadEnd - loadAddress)) bytes from offset \(hex(fileOffset)), the file has \(file.size) bytes")
            }
        }
        guard headerAddress + 32 <= loadEnd else {
            throw file.error("a.out kludge: header_addr \(hex(headerAddress)) is not inside the loaded range \(describe(loadAddress..<loadEnd))")
        }
        var end = loadEnd
        if a.bssEndAddress != 0 {
            end = UInt64(a.bssEndAddress)
            guard end >= loadEnd else {
                throw file.error("a.out kludge: bss_end_addr \(hex(end)) is below the end of the loaded bytes \(hex(loadEnd))")
            }
        }
        let entry = UInt64(a.entryAddress)
        guard entry >= loadAddress, entry < end else {
            throw file.error("a.out kludge: entry_addr \(hex(entry)) is outside the loaded image \(describe(loadAddress..<end))")
        }
        let segment = LoadSegment(name: "a.out image", fileOffset: fileOffset, fileSize: loadEnd - loadAddress,
                                  address: loadAddress, memorySize: end - loadAddress)
        return (segment, entry)
    }
}
