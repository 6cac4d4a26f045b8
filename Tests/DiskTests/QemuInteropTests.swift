import Foundation
import Testing
import VHDXFormat
@testable import VeneerDisk

// Interop with qemu-img (Debian qemu-utils): images qemu makes, Veneer writes; images Veneer
// makes and writes, qemu checks and converts. Each test prints SKIPPED with the reason when
// qemu-img is absent, or when this qemu cannot do what the test needs (differencing VHDX).

/// The writes every interop test makes: (offset, bytes), chosen to hit block starts, block
/// boundaries, a rewrite and the last sector.
private func interopWrites(size: UInt64) -> [(UInt64, [UInt8])] {
    [(0, pattern(4096, seed: 1)), ((1 << 20) - 512, pattern(8192, seed: 2)), ((9 << 20) + 4096, pattern(3 << 20, seed: 3)),
     (2048, pattern(1024, seed: 4)), (size - 512, pattern(512, seed: 5))]
}

private func apply(_ writes: [(UInt64, [UInt8])], to expected: inout [UInt8]) {
    for (offset, bytes) in writes { expected.replaceSubrange(Int(offset)..<Int(offset) + bytes.count, with: bytes) }
}

private func qemuCheckClean(_ qemu: String, _ path: String) {
    let check = runTool(qemu, ["check", "-f", "vhdx", path])
    #expect(check?.status == 0, "qemu-img check \(path): \(check?.output ?? "did not run")")
}

private func qemuConvert(_ qemu: String, _ path: String, in dir: TempDirectory) throws -> [UInt8]? {
    let raw = dir.file(UUID().uuidString + ".raw")
    let convert = runTool(qemu, ["convert", "-f", "vhdx", "-O", "raw", path, raw])
    guard convert?.status == 0 else {
        Issue.record("qemu-img convert \(path): \(convert?.output ?? "did not run")")
        return nil
    }
    return try fileBytes(raw)
}

@Suite struct QemuInteropTests {
    @Test(arguments: ["dynamic", "fixed"])
    func veneerWritesIntoQemuMadeImage(subformat: String) throws {
        guard let qemu = qemuImg else { print("SKIPPED: qemu-img is not installed (Debian package qemu-utils)"); return }
        let dir = try TempDirectory()
        defer { dir.remove() }
        let size: UInt64 = 48 << 20
        for blockSize in ["0", "1M"] {
            let path = dir.file("q-\(subformat)-\(blockSize).vhdx")
            let created = runTool(qemu, ["create", "-q", "-f", "vhdx", "-o", "subformat=\(subformat),block_size=\(blockSize)", path, "\(size)"])
            try #require(created?.status == 0, "qemu-img create: \(created?.output ?? "")")
            let writes = interopWrites(size: size)
            do {
                let image = try VHDXImage.open(path: path, readOnly: false)
                #expect(image.type.rawValue == subformat)
                for (offset, bytes) in writes { try DiskIO.write(image, at: offset, bytes) }
                try image.close()
            }
            var expected = [UInt8](repeating: 0, count: Int(size))
            apply(writes, to: &expected)
            qemuCheckClean(qemu, path)
            #expect(try qemuConvert(qemu, path, in: dir) == expected, "qemu reads back what Veneer wrote (\(subformat), block_size \(blockSize))")
            // And Veneer reads it back too after reopening.
            #expect(try DiskIO.read(VHDXImage.open(path: path, readOnly: true), at: 0, count: Int(size)) == expected)
        }
    }

    @Test(arguments: [VHDXImage.DiskType.dynamic, .fixed])
    func qemuReadsVeneerMadeImage(type: VHDXImage.DiskType) throws {
        guard let qemu = qemuImg else { print("SKIPPED: qemu-img is not installed (Debian package qemu-utils)"); return }
        let dir = try TempDirectory()
        defer { dir.remove() }
        let size: UInt64 = 40 << 20
        let path = dir.file("v.vhdx")
        try VHDXImage.create(path: path, options: .init(type: type, virtualSize: size, blockSize: 2 << 20))
        qemuCheckClean(qemu, path)
        let writes = interopWrites(size: size)
        do {
            let image = try VHDXImage.open(path: path, readOnly: false)
            for (offset, bytes) in writes { try DiskIO.write(image, at: offset, bytes) }
        }  // closed by deinit
        var expected = [UInt8](repeating: 0, count: Int(size))
        apply(writes, to: &expected)
        qemuCheckClean(qemu, path)
        #expect(try qemuConvert(qemu, path, in: dir) == expected)
        let info = runTool(qemu, ["info", "--output=json", path])?.output ?? ""
        #expect(info.contains("\"virtual-size\": \(size)"))
    }

    /// qemu's raw image of the data written into a Veneer differencing child must equal what
    /// Veneer reads; this qemu (7.x) refuses VHDX differencing disks, so that side is skipped
    /// with the reason while Veneer's own read-back and the parent's qemu check still run.
    @Test func veneerDifferencingChild() throws {
        guard let qemu = qemuImg else { print("SKIPPED: qemu-img is not installed (Debian package qemu-utils)"); return }
        let dir = try TempDirectory()
        defer { dir.remove() }
        let size: UInt64 = 24 << 20
        let base = dir.file("base.vhdx"), child = dir.file("child.vhdx")
        try #require(runTool(qemu, ["create", "-q", "-f", "vhdx", base, "\(size)"])?.status == 0)
        let baseWrites = interopWrites(size: size)
        do {
            let image = try VHDXImage.open(path: base, readOnly: false)
            for (offset, bytes) in baseWrites { try DiskIO.write(image, at: offset, bytes) }
        }
        qemuCheckClean(qemu, base)
        try VHDXImage.create(path: child, options: .init(type: .differencing, virtualSize: 0, blockSize: 1 << 20, parentPath: base))
        let childWrites: [(UInt64, [UInt8])] = [(1024, pattern(2048, seed: 20)), ((9 << 20) + 8192, pattern(1 << 20, seed: 21)), (16 << 20, pattern(4096, seed: 22))]
        do {
            let image = try VHDXImage.open(path: child, readOnly: false)
            for (offset, bytes) in childWrites { try DiskIO.write(image, at: offset, bytes) }
        }
        var expected = [UInt8](repeating: 0, count: Int(size))
        apply(baseWrites, to: &expected)
        apply(childWrites, to: &expected)
        #expect(try DiskIO.read(VHDXImage.open(path: child, readOnly: true), at: 0, count: Int(size)) == expected)
        #expect(try qemuConvert(qemu, base, in: dir).map { $0 != expected } ?? false, "the parent keeps its own data")
        let check = runTool(qemu, ["check", "-f", "vhdx", child])
        if check?.status != 0, let output = check?.output, output.localizedCaseInsensitiveContains("not supported") || output.contains("differencing") {
            print("SKIPPED: qemu-img cannot open VHDX differencing disks: \(output.trimmingCharacters(in: .whitespacesAndNewlines))")
            return
        }
        #expect(check?.status == 0, "qemu-img check: \(check?.output ?? "")")
        #expect(try qemuConvert(qemu, child, in: dir) == expected)
    }

    /// (c) A differencing child made by qemu-img of a parent with data: qemu 7.x cannot make
    /// one ("Backing file not supported for file format 'vhdx'"), which is reported as SKIPPED.
    @Test func qemuMadeDifferencingChild() throws {
        guard let qemu = qemuImg else { print("SKIPPED: qemu-img is not installed (Debian package qemu-utils)"); return }
        let dir = try TempDirectory()
        defer { dir.remove() }
        let base = dir.file("base.vhdx"), child = dir.file("child.vhdx")
        try #require(runTool(qemu, ["create", "-q", "-f", "vhdx", base, "16M"])?.status == 0)
        do { try DiskIO.write(VHDXImage.open(path: base, readOnly: false), at: 0, pattern(65536, seed: 8)) }
        let created = runTool(qemu, ["create", "-q", "-f", "vhdx", "-b", base, "-F", "vhdx", child])
        guard created?.status == 0 else {
            print("SKIPPED: this qemu-img cannot create a VHDX differencing disk: \((created?.output ?? "").trimmingCharacters(in: .whitespacesAndNewlines))")
            return
        }
        let image = try VHDXImage.open(path: child, readOnly: true)
        #expect(image.type == .differencing)
        #expect(try DiskIO.read(image, at: 0, count: 65536) == pattern(65536, seed: 8))
    }
}
