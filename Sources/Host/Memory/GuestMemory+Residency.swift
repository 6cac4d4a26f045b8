#if canImport(Glibc)
import Glibc
#endif

extension GuestMemory {
    /// Bytes of guest memory (RAM and ROM backings) resident in host memory now, by mincore(2)
    /// over each mapping: the guest pages this process's VmRSS includes.
    ///
    /// Unsafe-pointer invariants: mincore reads each backing's own mapping (`host`, `size` bytes,
    /// valid for this object's lifetime) and writes one byte per page into a buffer sized for
    /// exactly that many pages.
    public func residentBytes() -> UInt64 {
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return 0 }
        var total: UInt64 = 0
        for b in backings {
            let pages = Int((b.region.size + page - 1) / page)
            var vector = [UInt8](repeating: 0, count: pages)
            let status = vector.withUnsafeMutableBufferPointer { mincore(b.host, Int(b.region.size), $0.baseAddress) }
            guard status == 0 else { continue }
            total += UInt64(vector.lazy.filter { $0 & 1 != 0 }.count) * page
        }
        return total
    }
}

/// This process's resident memory (VmRSS of /proc/self/status), in bytes; nil if unreadable.
public func processResidentBytes() -> UInt64? {
    guard let file = fopen("/proc/self/status", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard text.hasPrefix("VmRSS:") else { continue }
        let kib = text.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { UInt64($0) }
        return kib.map { $0 * 1024 }
    }
    return nil
}
