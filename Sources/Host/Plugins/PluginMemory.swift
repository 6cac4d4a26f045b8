import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// Copies bytes out of the process's own memory at addresses a plugin gave, without trusting them:
/// an address that is not mapped readable yields nothing instead of a SIGSEGV.
///
/// Unsafe-pointer invariants: plugin addresses are never dereferenced here. The kernel copies
/// through process_vm_readv(2) on our own pid (allowed for the process itself under every ptrace
/// policy), or through pread(2) on /proc/self/mem where that system call is filtered out; both
/// report an unreadable range as an error or a short count. The only memory written is the
/// destination array, sized first.
public struct PluginMemory: Sendable {
    public init() {}

    /// The `count` bytes at `address`, or nil unless every one of them is readable.
    public func read(_ address: UInt, count: Int) -> [UInt8]? {
        let bytes = readPrefix(address, count: count)
        return bytes.count == count ? bytes : nil
    }

    /// As many of the `count` bytes at `address` as are readable from its start (maybe none).
    public func readPrefix(_ address: UInt, count: Int) -> [UInt8] {
        guard count > 0, address != 0, address <= UInt.max - UInt(count) else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        let copied = bytes.withUnsafeMutableBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return Self.copy(from: address, into: base, count: count)
        }
        bytes.removeLast(count - max(0, copied))
        return bytes
    }

    /// Reads up to `count` bytes; the count of leading bytes copied. A range that crosses into an
    /// unmapped page copies up to it (process_vm_readv stops at the first bad page).
    private static func copy(from address: UInt, into destination: UnsafeMutableRawPointer, count: Int) -> Int {
        let n = ckvm_read_own_memory(destination, address, count)
        if n >= 0 { return n }
        guard errno == ENOSYS || errno == EPERM else { return 0 }
        return procSelfMem(address, destination, count)
    }

    /// The fallback: /proc/self/mem, read a page at a time so a bad page ends the copy there.
    private static func procSelfMem(_ address: UInt, _ destination: UnsafeMutableRawPointer, _ count: Int) -> Int {
        let fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var done = 0
        while done < count {
            let here = address + UInt(done)
            let chunk = min(count - done, 4096 - Int(here % 4096))
            guard here <= UInt(Int64.max) else { break }
            let n = pread(fd, destination + done, chunk, off_t(here))
            guard n > 0 else { break }
            done += n
            if n < chunk { break }
        }
        return done
    }
}
