/// A piece of a kernel file that goes to a guest-physical address: `fileSize` bytes from the file,
/// then zeros up to `memorySize` (bss). ELF program headers and the multiboot a.out kludge both
/// reduce to these, so both get the same checks.
struct LoadSegment: Equatable {
    /// For messages: "segment 2 (PT_LOAD)", "a.out image".
    let name: String
    let fileOffset: UInt64
    let fileSize: UInt64
    let address: UInt64
    let memorySize: UInt64

    /// Checks every segment against the file, the address limit, each other and the free usable
    /// RAM of `placement` (which then holds them), then copies them into guest memory
    /// (zero-filling past the file bytes). Nothing is written unless all are sound.
    static func loadAll(_ segments: [LoadSegment], from file: BootFile, into memory: GuestMemory,
                        placement: inout BootPlacement, addressLimit: UInt64) throws(BootError) {
        var placed: [(segment: LoadSegment, range: Range<UInt64>)] = []
        for s in segments where s.memorySize > 0 {
            guard s.fileSize <= s.memorySize else {
                throw file.error("\(s.name): \(hex(s.fileSize)) file bytes exceed its memory size \(hex(s.memorySize))")
            }
            guard s.fileOffset <= file.size, s.fileSize <= file.size - s.fileOffset else {
                throw file.error("truncated: \(s.name): file bytes \(hex(s.fileOffset))+\(hex(s.fileSize)) run past the end of the file (\(file.size) bytes)")
            }
            guard s.address <= addressLimit, s.memorySize <= addressLimit - s.address else {
                throw file.error("\(s.name): \(hex(s.address))+\(hex(s.memorySize)) reaches above \(hex(addressLimit)), beyond what this boot protocol can address")
            }
            placed.append((s, s.address..<s.address + s.memorySize))
        }
        guard !placed.isEmpty else { throw file.error("no segment to load: every loadable segment is empty") }
        let sorted = placed.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.range.overlaps(b.range) {
            throw file.error("\(a.segment.name) (\(describe(a.range))) and \(b.segment.name) (\(describe(b.range))) overlap")
        }
        for (s, range) in placed {
            if let reason = placement.claim(range, name: "kernel \(s.name)") { throw file.error("\(s.name): \(describe(range)) \(reason)") }
        }
        do {
            let zeros = [UInt8](repeating: 0, count: 1 << 16)
            for (s, _) in placed {
                if s.fileSize > 0 {
                    try memory.load(Array(file.bytes[Int(s.fileOffset)..<Int(s.fileOffset + s.fileSize)]), at: s.address)
                }
                // Zero the bss explicitly: the RAM may not be fresh (a reboot reloads the kernel).
                var at = s.address + s.fileSize
                let end = s.address + s.memorySize
                while at < end {
                    let n = min(end - at, UInt64(zeros.count))
                    try memory.load(n == UInt64(zeros.count) ? zeros : Array(zeros[0..<Int(n)]), at: at)
                    at += n
                }
            }
        } catch {
            throw file.error(error.description)
        }
    }
}

/// "0x100000-0x1fffff": an inclusive rendering of a non-empty guest range, for messages.
func describe(_ range: Range<UInt64>) -> String {
    range.isEmpty ? "\(hex(range.lowerBound)) (empty)" : "\(hex(range.lowerBound))-\(hex(range.upperBound - 1))"
}
