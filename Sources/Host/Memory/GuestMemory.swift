#if canImport(Glibc)
import Glibc
#endif
import CKVM

public enum GuestMemoryError: Error, CustomStringConvertible, Sendable, Equatable {
    case outsideRAM(address: UInt64, length: UInt64)
    case readOnly(address: UInt64)
    case allocation(String)

    public var description: String {
        switch self {
        case .outsideRAM(let a, let l): "guest range \(hex(a))+\(hex(l)) is not inside guest RAM"
        case .readOnly(let a): "guest address \(hex(a)) is read-only memory"
        case .allocation(let why): "cannot allocate guest memory: \(why)"
        }
    }
}

/// Host memory behind the guest's RAM and ROM regions, one memfd mapping per region.
///
/// Unsafe-pointer invariants (this file and `Backing` are the only place guest memory is touched
/// through raw pointers): each backing maps exactly `size` bytes at `host` for the lifetime of the
/// `GuestMemory`; every access first passes `locate`, which checks for arithmetic overflow and that
/// the whole range lies inside one backing, so no pointer ever leaves a mapping. Guest memory is
/// shared with running vCPUs: reads and writes are plain byte copies, never assumptions about what
/// the guest will leave there.
public final class GuestMemory: @unchecked Sendable {
    public struct Backing: @unchecked Sendable {
        public let region: MemoryMap.Region
        public let host: UnsafeMutableRawPointer
        public let fd: OwnedFD
    }

    public let map: MemoryMap
    public let backings: [Backing]

    public init(map: MemoryMap) throws(GuestMemoryError) {
        self.map = map
        var backings: [Backing] = []
        for region in map.regions where region.kind != .mmio {
            let raw = ckvm_memfd("veneer-\(region.name)")
            guard raw >= 0 else { throw .allocation(SystemError("memfd_create").description) }
            let fd = OwnedFD(raw)
            guard ftruncate(raw, off_t(region.size)) == 0 else {
                throw .allocation(SystemError("ftruncate \(region.name) to \(region.size) bytes").description)
            }
            guard let host = mmap(nil, Int(region.size), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, raw, 0),
                  host != MAP_FAILED
            else { throw .allocation(SystemError("mmap \(region.name)").description) }
            _ = madvise(host, Int(region.size), MADV_HUGEPAGE)
            backings.append(Backing(region: region, host: host, fd: fd))
        }
        self.backings = backings
    }

    deinit {
        for b in backings { munmap(b.host, Int(b.region.size)) }
    }

    /// The backing and offset for the whole range, or nil when any byte falls outside RAM/ROM.
    @inline(__always)
    func locate(_ address: UInt64, _ length: UInt64) -> (Backing, Int)? {
        for b in backings where b.region.contains(address, length: length) {
            return (b, Int(address - b.region.start))
        }
        return nil
    }

    public func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        guard let (b, offset) = locate(address, UInt64(buffer.count)) else {
            throw .outsideRAM(address: address, length: UInt64(buffer.count))
        }
        if let dst = buffer.baseAddress { memcpy(dst, b.host + offset, buffer.count) }
    }

    /// A guest-visible write: refused for ROM.
    public func write(_ address: UInt64, from buffer: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        guard let (b, offset) = locate(address, UInt64(buffer.count)) else {
            throw .outsideRAM(address: address, length: UInt64(buffer.count))
        }
        guard b.region.kind == .ram else { throw .readOnly(address: address) }
        if let src = buffer.baseAddress { memcpy(b.host + offset, src, buffer.count) }
    }

    /// The VMM's own write (loaders filling RAM or ROM before the VM starts).
    public func load(_ bytes: [UInt8], at address: UInt64) throws(GuestMemoryError) {
        guard let (b, offset) = locate(address, UInt64(bytes.count)) else {
            throw .outsideRAM(address: address, length: UInt64(bytes.count))
        }
        bytes.withUnsafeBytes { src in
            if let base = src.baseAddress { memcpy(b.host + offset, base, bytes.count) }
        }
    }

    public func bytes(_ address: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8] {
        guard let (b, offset) = locate(address, UInt64(count)) else {
            throw .outsideRAM(address: address, length: UInt64(count))
        }
        return Array(UnsafeRawBufferPointer(start: b.host + offset, count: count))
    }

    public func readValue<T: FixedWidthInteger>(_ address: UInt64, as _: T.Type = T.self) throws(GuestMemoryError) -> T {
        guard let (b, offset) = locate(address, UInt64(MemoryLayout<T>.size)) else {
            throw .outsideRAM(address: address, length: UInt64(MemoryLayout<T>.size))
        }
        return T(littleEndian: (b.host + offset).loadUnaligned(as: T.self))
    }

    public func writeValue<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(GuestMemoryError) {
        guard let (b, offset) = locate(address, UInt64(MemoryLayout<T>.size)) else {
            throw .outsideRAM(address: address, length: UInt64(MemoryLayout<T>.size))
        }
        guard b.region.kind == .ram else { throw .readOnly(address: address) }
        (b.host + offset).storeBytes(of: value.littleEndian, as: T.self)
    }

    /// A host pointer to the whole range for zero-copy device access, or nil when the range is not
    /// inside one backing (or is ROM and `writable` was asked).
    public func pointer(_ address: UInt64, length: UInt64, writable: Bool) -> UnsafeMutableRawPointer? {
        guard let (b, offset) = locate(address, length), !writable || b.region.kind == .ram else { return nil }
        return b.host + offset
    }

    // MARK: words shared with running vCPUs (SynIC message and event pages)

    /// Atomically ORs `mask` into the aligned 32-bit word at `address`; returns the old value.
    public func atomicOr32(_ address: UInt64, _ mask: UInt32) throws(GuestMemoryError) -> UInt32 {
        guard address % 4 == 0, let p = pointer(address, length: 4, writable: true) else {
            throw .outsideRAM(address: address, length: 4)
        }
        return ckvm_atomic_or32(p.assumingMemoryBound(to: UInt32.self), mask)
    }

    /// A release store: everything written before it is visible to a vCPU that sees it.
    public func storeRelease32(_ value: UInt32, at address: UInt64) throws(GuestMemoryError) {
        guard address % 4 == 0, let p = pointer(address, length: 4, writable: true) else {
            throw .outsideRAM(address: address, length: 4)
        }
        ckvm_store_release32(p.assumingMemoryBound(to: UInt32.self), value)
    }

    public func loadAcquire32(_ address: UInt64) throws(GuestMemoryError) -> UInt32 {
        guard address % 4 == 0, let p = pointer(address, length: 4, writable: false) else {
            throw .outsideRAM(address: address, length: 4)
        }
        return ckvm_load_acquire32(p.assumingMemoryBound(to: UInt32.self))
    }

    public func atomicOr8(_ address: UInt64, _ mask: UInt8) throws(GuestMemoryError) {
        guard let p = pointer(address, length: 1, writable: true) else { throw .outsideRAM(address: address, length: 1) }
        ckvm_atomic_or8(p.assumingMemoryBound(to: UInt8.self), mask)
    }
}
