import Foundation
import Testing
import VHDXFormat
@testable import VeneerDisk

// Seeded fuzz of VHDX opening: a valid image with data has one structure mutated per input
// (a header or region table mutated and then re-sealed so the checksum passes, the metadata
// table or an item, the BAT, or a log entry with a valid checksum and hostile descriptors).
// After each input: no crash or hang; either a one-line error naming the file, or an image
// whose extents cover every read exactly and stay inside the file.
//
// VENEER_FUZZ_STEPS sets the number of inputs (default 300), VENEER_FUZZ_SEED the seed.

private struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
}

@Suite struct VHDXFuzzTests {
    @Test func mutatedImagesAreRefusedOrSafe() throws {
        let env = ProcessInfo.processInfo.environment
        let steps = env["VENEER_FUZZ_STEPS"].flatMap(Int.init) ?? 300
        let seed = env["VENEER_FUZZ_SEED"].flatMap(UInt64.init) ?? 0x5648_4458
        print("vhdx-fuzz: \(steps) steps, seed \(seed)")
        var random = SplitMix64(state: seed)
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("f.vhdx")
        try VHDXImage.create(path: path, options: .init(type: .dynamic, virtualSize: 8 << 20, blockSize: 1 << 20))
        do {
            let image = try VHDXImage.open(path: path, readOnly: false)
            try DiskIO.write(image, at: 0, pattern(8192, seed: 1))
            try DiskIO.write(image, at: 5 << 20, pattern(4096, seed: 2))
        }
        let base = try fileBytes(path)
        let interesting: [UInt64] = [0, 1, 0xFF, 0x1000, 0x10_0000, 0x7FFF_FFFF, 0xFFFF_FFFF, 1 << 40, UInt64.max, UInt64.max - 0xFFFFF]
        var opened = 0, refused = 0

        for step in 0..<steps {
            var bytes = base
            let kind = random.below(6)
            func mutate(_ start: Int, _ length: Int) {
                for _ in 0..<(1 + random.below(6)) {
                    let at = start + random.below(length)
                    switch random.below(3) {
                    case 0: bytes[at] ^= UInt8(1 << random.below(8))
                    case 1: bytes[at] = UInt8(truncatingIfNeeded: random.next())
                    default:
                        let value = interesting[random.below(interesting.count)]
                        let width = [2, 4, 8][random.below(3)]
                        for i in 0..<width where at + i < start + length { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
                    }
                }
            }
            func reseal(_ start: Int, _ length: Int) {
                var region = Array(bytes[start..<start + length])
                CRC32C.seal(&region, fieldAt: 4)
                bytes.replaceSubrange(start..<start + length, with: region)
            }
            var writable = false
            switch kind {
            case 0:  // the current header (slot 2 has the higher sequence number), re-sealed
                let at = Int(VHDXLayout.headerOffsets[1])
                mutate(at + 8, 80)
                reseal(at, 4096)
            case 1:  // both region tables, re-sealed
                for offset in VHDXLayout.regionTableOffsets {
                    mutate(Int(offset) + 8, 16 + 2 * 32)
                    reseal(Int(offset), 65536)
                }
            case 2:  // metadata table and items
                mutate(2 << 20, 64 * 1024 + 4096)
            case 3:  // BAT
                mutate(3 << 20, 128)
            default:  // a log entry that passes its checksum, and a header naming its log
                writable = true
                let guid = VHDXGUID.random()
                var descriptors: [VHDXLogEntry.Descriptor] = []
                for _ in 0..<(1 + random.below(3)) {
                    let offset = random.below(2) == 0 ? UInt64(random.below(16)) * 4096 + (3 << 20) : interesting[random.below(interesting.count)] & ~0xFFF
                    descriptors.append(random.below(2) == 0
                        ? .data(fileOffset: offset, data: (0..<4096).map { _ in UInt8(truncatingIfNeeded: random.next()) })
                        : .zero(fileOffset: offset, length: interesting[random.below(interesting.count)] & ~0xFFF))
                }
                var entry = VHDXLogEntry(sequenceNumber: 1 + UInt64(random.below(100)), tail: 0, logGUID: guid,
                                         flushedFileOffset: interesting[random.below(interesting.count)] % UInt64(base.count + 1),
                                         lastFileOffset: interesting[random.below(interesting.count)], descriptors: descriptors).encode()
                if random.below(4) == 0 { entry[8 + random.below(56)] ^= 0xFF; CRC32C.seal(&entry, fieldAt: 4) }
                bytes.replaceSubrange((1 << 20)..<((1 << 20) + entry.count), with: entry)
                var header = try VHDXHeader.decode(Array(bytes[(128 << 10)..<(132 << 10)]))
                header.logGUID = guid
                bytes.replaceSubrange((128 << 10)..<(132 << 10), with: header.encode())
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                let image = try VHDXImage.open(path: path, readOnly: !writable)
                opened += 1
                let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber
                let fileSize = size?.uint64Value ?? 0
                let extents = try image.mapForRead(offset: 0, length: image.geometry.virtualSize)
                #expect(extents.reduce(0) { $0 + $1.length } == image.geometry.virtualSize, "step \(step)")
                for case .file(_, let offset, let length) in extents {
                    #expect(offset <= fileSize && length <= fileSize - offset, "step \(step): extent \(offset)+\(length) outside the \(fileSize)-byte file")
                }
                if writable {
                    let at = UInt64(random.below(Int(image.geometry.virtualSize / 512))) * 512
                    _ = try? DiskIO.write(image, at: at, [UInt8](repeating: 7, count: 512))
                }
            } catch let error as DiskError {
                refused += 1
                #expect(error.path == path && !error.description.contains("\n"), "step \(step): \(error)")
            }
        }
        print("vhdx-fuzz: \(opened) opened, \(refused) refused")
        #expect(opened > 0 && refused > 0, "the mutations reach both outcomes")
    }
}
