import Foundation
import Testing
@testable import VeneerDisk

// A process killed at every possible point of a series of writes: the VHDX's own writes,
// flushes and resizes stop at step N (CrashPoint), and so does the data the engine would write.
// Reopened afterwards (the log replayed), every write that was acknowledged reads back, the one
// in flight reads as all old or all new per sector, nothing else changed, and qemu-img finds the
// file clean. N runs from 0 until a run finishes without reaching its crash point.

private let writes: [(offset: UInt64, bytes: [UInt8])] = [
    (0, pattern(8192, seed: 1)),                      // allocates block 0
    ((1 << 20) - 4096, pattern(8192, seed: 2)),       // spans blocks 0 and 1: allocates 1
    (4096, pattern(4096, seed: 3)),                   // rewrites inside block 0: no metadata
    ((2 << 20) + 512, pattern(1024, seed: 4)),        // allocates block 2
    (3 << 20, pattern(1 << 20, seed: 5)),             // a whole block
]

private func applying(_ list: [(offset: UInt64, bytes: [UInt8])], to start: [UInt8]) -> [UInt8] {
    var out = start
    for w in list { out.replaceSubrange(Int(w.offset)..<Int(w.offset) + w.bytes.count, with: w.bytes) }
    return out
}

@Suite struct VHDXCrashTests {
    @Test(arguments: [VHDXImage.DiskType.dynamic, .differencing])
    func everyCrashPointLeavesAConsistentFile(type: VHDXImage.DiskType) throws {
        let size = 4 << 20
        // tmpfs when there is one: this test is about the order of writes, not about the media,
        // and hundreds of real flushes would only make it slow.
        let scratch = FileManager.default.isWritableFile(atPath: "/dev/shm") ? "/dev/shm" : "/tmp"
        let shared = try TempDirectory(base: scratch)
        defer { shared.remove() }
        // A differencing disk's parent, made once: children only read it.
        var before = [UInt8](repeating: 0, count: size)
        let base = shared.file("base.vhdx")
        if type == .differencing {
            try VHDXImage.create(path: base, options: .init(type: .dynamic, virtualSize: UInt64(size), blockSize: 1 << 20))
            before = pattern(size, seed: 77)
            do { try DiskIO.write(VHDXImage.open(path: base, readOnly: false), at: 0, before) }
        }
        var finished = false
        var crashPoints = 0
        for steps in 0..<400 where !finished {
            let dir = try TempDirectory(base: scratch)
            defer { dir.remove() }
            let path = dir.file("crash.vhdx")
            if type == .differencing {
                try VHDXImage.create(path: path, options: .init(type: .differencing, virtualSize: 0, blockSize: 1 << 20, parentPath: base))
            } else {
                try VHDXImage.create(path: path, options: .init(type: .dynamic, virtualSize: UInt64(size), blockSize: 1 << 20))
            }

            let crash = CrashPoint(after: steps)
            var acknowledged: [(offset: UInt64, bytes: [UInt8])] = []
            var inFlight: (offset: UInt64, bytes: [UInt8])?
            do {
                let image = try VHDXImage.open(path: path, readOnly: false, depth: 0, crashPoint: crash)
                for w in writes {
                    do {
                        let mapping = try image.mapForWrite(offset: w.offset, length: UInt64(w.bytes.count))
                        try crash.step(path)  // the engine's data write
                        var done = 0
                        for case .file(let fd, let offset, let length) in mapping.extents {
                            _ = w.bytes[done..<done + Int(length)].withUnsafeBytes { pwrite(fd, $0.baseAddress, Int(length), off_t(offset)) }
                            done += Int(length)
                        }
                        try image.completeWrite(mapping, durable: false)
                        acknowledged.append(w)
                    } catch {
                        inFlight = w
                        break
                    }
                }
                if !crash.crashed {
                    do { try image.close() } catch {
                        if !crash.crashed { throw error }  // else: killed while closing
                    }
                }
            }
            finished = !crash.crashed
            if crash.crashed { crashPoints += 1 }

            let image = try VHDXImage.open(path: path, readOnly: false)
            let actual = try DiskIO.read(image, at: 0, count: size)
            let old = applying(acknowledged, to: before)
            let new = inFlight.map { applying([$0], to: old) } ?? old
            var bad: [Int] = []
            if actual != old && actual != new {
                for sector in stride(from: 0, to: size, by: 512) where actual[sector..<sector + 512] != old[sector..<sector + 512]
                    && actual[sector..<sector + 512] != new[sector..<sector + 512] {
                    bad.append(sector / 512)
                }
            }
            let badSectors = bad.count
            #expect(badSectors == 0, "crash after \(steps) steps (\(acknowledged.count) writes acknowledged): sectors \(bad.prefix(8)) hold neither old nor new data")
            try image.close()
            if type == .dynamic, let qemu = qemuImg {
                let check = runTool(qemu, ["check", "-f", "vhdx", path])
                #expect(check?.status == 0, "crash after \(steps) steps: \(check?.output ?? "")")
            }
        }
        #expect(finished, "a run without a crash ends the series")
        #expect(crashPoints > 10, "the writes pass through many crash points (\(crashPoints))")
        print("vhdx-crash (\(type.rawValue)): \(crashPoints) crash points, every one consistent")
    }
}
