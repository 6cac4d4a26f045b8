import Foundation
import Testing
@testable import VeneerHost

/// Synthetic boot images for the loader tests: bzImages, ELF executables and multiboot headers
/// built byte by byte, so each test states exactly which field is wrong.
enum BootFixtures {
    /// A byte pattern that differs at every offset within 255 bytes, so misplaced copies show.
    static func pattern(_ count: Int, seed: Int = 1) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &+ ($0 >> 8)) }
    }

    static func memory(_ ramBytes: UInt64 = 64 << 20) throws -> GuestMemory {
        try GuestMemory(map: try MemoryMap.pc(ramBytes: ramBytes))
    }

    /// The NUL-terminated string at `address` in guest memory (at most 4096 bytes).
    static func cString(_ memory: GuestMemory, at address: UInt64) throws -> String {
        var bytes: [UInt8] = []
        for i in 0..<UInt64(4096) {
            let b: UInt8 = try memory.readValue(address + i)
            if b == 0 { break }
            bytes.append(b)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A temporary directory for image files, removed when the test lets go of it.
final class Scratch {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "/veneer-boot-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let file = "\(path)/\(name)"
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }

    /// A file of `size` zero bytes that takes no disk space.
    func sparse(_ size: UInt64, _ name: String) throws -> String {
        let file = "\(path)/\(name)"
        guard FileManager.default.createFile(atPath: file, contents: nil), truncate(file, off_t(size)) == 0 else {
            throw CocoaError(.fileWriteUnknown)
        }
        return file
    }
}

/// Little-endian field writes into a growing byte array.
struct Bytes {
    var data: [UInt8]

    init(count: Int = 0) { data = [UInt8](repeating: 0, count: count) }

    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        if data.count < offset + MemoryLayout<T>.size { data += [UInt8](repeating: 0, count: offset + MemoryLayout<T>.size - data.count) }
        for i in 0..<MemoryLayout<T>.size { data[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    mutating func put(_ bytes: [UInt8], at offset: Int) {
        if data.count < offset + bytes.count { data += [UInt8](repeating: 0, count: offset + bytes.count - data.count) }
        data.replaceSubrange(offset..<offset + bytes.count, with: bytes)
    }
}

/// A bzImage with a protocol 2.15 setup header; every field a test may want wrong is a property.
struct BzImageFixture {
    var bootFlag: UInt16 = 0xAA55
    var magic: UInt32 = 0x5372_6448
    var version: UInt16 = 0x020F
    var setupSectors: UInt8 = 1
    /// The jump displacement at 0x201: the header ends at 0x202 + this.
    var headerLength: UInt8 = 0x6A
    var loadflags: UInt8 = 0x01
    var xloadflags: UInt16 = 0x01
    var relocatable = true
    var kernelAlignment: UInt32 = 0x20_0000
    var preferredAddress: UInt64 = 0x100_0000
    var initSize: UInt32 = 0x10_0000
    var cmdlineSize: UInt32 = 2047
    var initrdAddressMax: UInt32 = 0x7FFF_FFFF
    var syssize: UInt32?
    var payload: [UInt8] = BootFixtures.pattern(0x1000)

    var setupBytes: Int { (setupSectors == 0 ? 5 : Int(setupSectors) + 1) * 512 }

    var bytes: [UInt8] {
        var b = Bytes(count: setupBytes)
        b.put(setupSectors, at: 0x1F1)
        b.put(syssize ?? UInt32((payload.count + 15) / 16), at: 0x1F4)
        b.put(bootFlag, at: 0x1FE)
        b.put(UInt8(0xEB), at: 0x200)
        b.put(headerLength, at: 0x201)
        b.put(magic, at: 0x202)
        b.put(version, at: 0x206)
        b.put(UInt32(0x10_0000), at: 0x214)
        b.put(loadflags, at: 0x211)
        b.put(initrdAddressMax, at: 0x22C)
        b.put(kernelAlignment, at: 0x230)
        b.put(UInt8(relocatable ? 1 : 0), at: 0x234)
        b.put(UInt8(21), at: 0x235)
        b.put(xloadflags, at: 0x236)
        b.put(cmdlineSize, at: 0x238)
        b.put(preferredAddress, at: 0x258)
        b.put(initSize, at: 0x260)
        return b.data + payload
    }
}

/// An x86 ELF executable: header, program headers, then each segment's bytes 16-byte aligned.
struct ELFFixture {
    struct Segment {
        var type: UInt32 = 1
        var address: UInt64
        /// p_paddr when it differs from p_vaddr.
        var physical: UInt64?
        var data: [UInt8]
        var memorySize: UInt64?
        /// Overrides for hostile headers: p_filesz and p_offset as written, whatever the data.
        var fileSize: UInt64?
        var offset: UInt64?
        var alignment: UInt64 = 0x1000
    }

    var is64 = true
    var machine: UInt16?
    var type: UInt16 = 2
    var entry: UInt64
    var segments: [Segment]

    var bytes: [UInt8] {
        let headerSize = is64 ? 64 : 52, entrySize = is64 ? 56 : 32
        var b = Bytes(count: headerSize)
        b.put([0x7F, 0x45, 0x4C, 0x46, is64 ? 2 : 1, 1, 1], at: 0)
        b.put(type, at: 16)
        b.put(machine ?? (is64 ? 62 : 3), at: 18)
        b.put(UInt32(1), at: 20)
        if is64 {
            b.put(entry, at: 24)
            b.put(UInt64(headerSize), at: 32)
            b.put(UInt16(headerSize), at: 52)
            b.put(UInt16(entrySize), at: 54)
            b.put(UInt16(segments.count), at: 56)
        } else {
            b.put(UInt32(truncatingIfNeeded: entry), at: 24)
            b.put(UInt32(headerSize), at: 28)
            b.put(UInt16(headerSize), at: 40)
            b.put(UInt16(entrySize), at: 42)
            b.put(UInt16(segments.count), at: 44)
        }
        var dataOffset = (headerSize + entrySize * segments.count + 15) & ~15
        for (i, s) in segments.enumerated() {
            let at = headerSize + i * entrySize
            let offset = s.offset ?? UInt64(dataOffset)
            let fileSize = s.fileSize ?? UInt64(s.data.count)
            let memorySize = s.memorySize ?? UInt64(s.data.count)
            let physical = s.physical ?? s.address
            if is64 {
                b.put(s.type, at: at)
                b.put(UInt32(7), at: at + 4)
                b.put(offset, at: at + 8)
                b.put(s.address, at: at + 16)
                b.put(physical, at: at + 24)
                b.put(fileSize, at: at + 32)
                b.put(memorySize, at: at + 40)
                b.put(s.alignment, at: at + 48)
            } else {
                b.put(s.type, at: at)
                b.put(UInt32(truncatingIfNeeded: offset), at: at + 4)
                b.put(UInt32(truncatingIfNeeded: s.address), at: at + 8)
                b.put(UInt32(truncatingIfNeeded: physical), at: at + 12)
                b.put(UInt32(truncatingIfNeeded: fileSize), at: at + 16)
                b.put(UInt32(truncatingIfNeeded: memorySize), at: at + 20)
                b.put(UInt32(7), at: at + 24)
                b.put(UInt32(truncatingIfNeeded: s.alignment), at: at + 28)
            }
            b.put(s.data, at: dataOffset)
            dataOffset = (dataOffset + s.data.count + 15) & ~15
        }
        return b.data
    }

    /// A Xen ELF note (name "Xen") of `type` with `descriptor`.
    static func xenNote(type: UInt32 = 18, descriptor: [UInt8]) -> [UInt8] {
        var b = Bytes()
        b.put(UInt32(4), at: 0)
        b.put(UInt32(descriptor.count), at: 4)
        b.put(type, at: 8)
        b.put(Array("Xen\0".utf8), at: 12)
        b.put(descriptor, at: 16)
        b.data += [UInt8](repeating: 0, count: (4 - descriptor.count % 4) % 4)
        return b.data
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}

/// A multiboot v1 header, optionally with the a.out kludge address fields.
struct MultibootHeaderFixture {
    struct Addresses {
        var header: UInt32
        var load: UInt32
        var loadEnd: UInt32
        var bssEnd: UInt32
        var entry: UInt32
    }

    var flags: UInt32 = 0x3
    var checksum: UInt32?
    var addresses: Addresses?

    var bytes: [UInt8] {
        let magic: UInt32 = 0x1BAD_B002
        let flags = addresses == nil ? flags : flags | 1 << 16
        var b = Bytes()
        b.put(magic, at: 0)
        b.put(flags, at: 4)
        b.put(checksum ?? (0 &- magic &- flags), at: 8)
        if let a = addresses {
            b.put(a.header, at: 12)
            b.put(a.load, at: 16)
            b.put(a.loadEnd, at: 20)
            b.put(a.bssEnd, at: 24)
            b.put(a.entry, at: 28)
        }
        return b.data
    }
}

/// Runs `body` expecting a BootError about `path` whose reason contains `fragment`.
func expectBootError(_ path: String, _ fragment: String, role: String = "boot image",
                     sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    let error = #expect(throws: BootError.self, sourceLocation: sourceLocation) { try body() }
    guard let error else { return }
    #expect(error.image == path, "\(error)", sourceLocation: sourceLocation)
    #expect(error.role == role, "\(error)", sourceLocation: sourceLocation)
    #expect(error.reason.contains(fragment), "\(error)", sourceLocation: sourceLocation)
    // A file that could not be read is named by its config key first: "boot.initrd: initrd PATH: ...".
    let prefix = (error.key.map { "\($0): " } ?? "") + "\(role) \(path): "
    #expect(error.description.hasPrefix(prefix), "\(error)", sourceLocation: sourceLocation)
    #expect((error.key != nil) == error.unreadable, "\(error)", sourceLocation: sourceLocation)
}
