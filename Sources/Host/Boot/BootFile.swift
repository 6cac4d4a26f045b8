#if canImport(Glibc)
import Glibc
#endif

/// A file a loader reads (kernel, initrd, module), with bounds-checked little-endian reads whose
/// failures name the file and the field that runs past its end. Every header field is hostile.
struct BootFile {
    let path: String
    let role: String
    let bytes: [UInt8]

    init(path: String, role: String, bytes: [UInt8]) {
        self.path = path
        self.role = role
        self.bytes = bytes
    }

    /// Reads the whole file, refusing one larger than `limit` (guest RAM: it could never fit) and
    /// anything but a regular file. `key` is the config key that named it, for the message.
    static func read(_ path: String, role: String, key: String, limit: UInt64) throws(BootError) -> BootFile {
        do {
            return BootFile(path: path, role: role, bytes: try readWholeFile(path, limit: Int(min(limit, UInt64(Int.max)))))
        } catch {
            let reason = switch error {
            case .tooLarge(_, let size, _): "it is larger than guest RAM (\(size) bytes)"
            default: error.reason
            }
            throw BootError(image: path, reason: reason, role: role, key: key, unreadable: true)
        }
    }

    var size: UInt64 { UInt64(bytes.count) }

    func error(_ reason: String) -> BootError { BootError(image: path, reason: reason, role: role) }

    /// The bytes at [offset, offset + count), or an error naming `what` when they are not all there.
    func slice(_ offset: UInt64, count: UInt64, _ what: String) throws(BootError) -> ArraySlice<UInt8> {
        guard offset <= size, count <= size - offset else {
            throw error("truncated: \(what) at offset \(hex(offset))+\(hex(count)) lies past the end of the file (\(size) bytes)")
        }
        return bytes[Int(offset)..<Int(offset + count)]
    }

    func value<T: FixedWidthInteger & UnsignedInteger>(_ offset: UInt64, _ what: String, as _: T.Type = T.self) throws(BootError) -> T {
        let field = try slice(offset, count: UInt64(MemoryLayout<T>.size), what)
        var v: T = 0
        for (i, b) in field.enumerated() { v |= T(b) << (8 * i) }
        return v
    }

    func u8(_ offset: UInt64, _ what: String) throws(BootError) -> UInt8 { try value(offset, what) }
    func u16(_ offset: UInt64, _ what: String) throws(BootError) -> UInt16 { try value(offset, what) }
    func u32(_ offset: UInt64, _ what: String) throws(BootError) -> UInt32 { try value(offset, what) }
    func u64(_ offset: UInt64, _ what: String) throws(BootError) -> UInt64 { try value(offset, what) }
}

/// A structure the VMM builds for the guest (zero page, start info, multiboot info) before
/// copying it into guest RAM in one piece. Offsets are the loader's own constants, not guest data.
struct LittleEndianBuffer {
    private(set) var bytes: [UInt8]

    init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }

    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= bytes.count, "structure field outside its buffer")
        for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    mutating func put<C: Collection<UInt8>>(bytes source: C, at offset: Int) {
        precondition(offset >= 0 && offset + source.count <= bytes.count, "structure field outside its buffer")
        bytes.replaceSubrange(offset..<offset + source.count, with: source)
    }
}
