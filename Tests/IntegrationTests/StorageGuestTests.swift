import Foundation
import Testing
import VeneerHost

/// examples/storage.toml end to end: the storvsc test guest (examples/guests/storvsc) against the
/// storvsp plugin with a dynamic VHDX, a raw disk with 4 KiB blocks and a read-only raw disk,
/// created fresh with `veneer disk create` in a scratch directory. The guest checks the protocol,
/// the probe answers and its own data; this test checks the exit status, the log, and then the
/// images from the host: `qemu-img check` and the pattern in the VHDX (through `qemu-img convert`),
/// the pattern in the raw disk, and the untouched read-only disk.
@Suite(.enabled(if: VeneerProcess.kvmAvailable, "SKIPPED: /dev/kvm is not available on this machine"))
struct StorageGuestTests {
    /// The guest's pattern (examples/guests/storvsc/main.c): word at byte offset o of LUN l at
    /// generation g; chunk k of 64 starts at k * size / 64, is 4096 * (1 + 7k % 16) bytes long and
    /// ends at generation 2 for k < 8 (the FUA pass), 1 otherwise; all else is zero.
    static func expectedWord(lun: UInt64, size: Int, offset: Int) -> UInt64 {
        let spacing = size / 64
        let chunk = offset / spacing
        let length = 4096 * (1 + (chunk * 7) % 16)
        guard offset - chunk * spacing < length else { return 0 }
        let generation: UInt64 = chunk < 8 ? 2 : 1
        return (UInt64(offset) &+ 1) &* 0x9E37_79B9_7F4A_7C15 ^ (lun + 1) << 56 ^ generation << 48
    }

    /// The first word of `data` (a whole disk of LUN `lun`) that differs from the pattern, if any.
    static func firstMismatch(_ data: Data, lun: UInt64) -> String? {
        data.withUnsafeBytes { raw -> String? in
            let words = raw.bindMemory(to: UInt64.self)
            for i in 0..<words.count {
                let want = expectedWord(lun: lun, size: data.count, offset: i * 8)
                let got = UInt64(littleEndian: words[i])
                if got != want {
                    return "offset 0x\(String(i * 8, radix: 16)): 0x\(String(got, radix: 16)), want 0x\(String(want, radix: 16))"
                }
            }
            return nil
        }
    }

    static func which(_ tool: String) -> String? {
        for dir in ["/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin", "/sbin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(tool)") {
            return "\(dir)/\(tool)"
        }
        return nil
    }

    @Test func storvscGuestProbesAndVerifiesItsDisks() throws {
        try runAndCheck(image: "storvsc.bin")
    }

    /// The same guest ending as Linux powers off, with every channel still open: storvsp and the
    /// VMM must still close the images (a VHDX with its log cleared).
    @Test func disksAreCleanWhenTheGuestExitsWithChannelsOpen() throws {
        try runAndCheck(image: "storvsc-open.bin")
    }

    func runAndCheck(image: String) throws {
        let scratch = try BootTestSupport.Scratch()
        let dir = scratch.path
        // The shipped config, with the guest image made absolute; the disks' relative paths then
        // resolve inside the scratch directory.
        let example = try String(contentsOfFile: VeneerProcess.repoRoot + "/examples/storage.toml", encoding: .utf8)
        let imageLine = "image = \"guests/build/storvsc.bin\""
        try #require(example.contains(imageLine), "examples/storage.toml no longer boots guests/build/storvsc.bin")
        let config = example.replacingOccurrences(
            of: imageLine, with: "image = \"\(VeneerProcess.repoRoot)/examples/guests/build/\(image)\"")
        try config.write(toFile: dir + "/storage.toml", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/build/storage", withIntermediateDirectories: true)
        let disks = dir + "/build/storage"
        for arguments in [
            ["disk", "create", disks + "/disk.vhdx", "--format", "vhdx", "--type", "dynamic", "--size", "64M",
             "--logical-sector", "512", "--physical-sector", "4096"],
            ["disk", "create", disks + "/disk.raw", "--format", "raw", "--size", "16M"],
            ["disk", "create", disks + "/seed.raw", "--format", "raw", "--size", "8M"],
        ] {
            let r = try VeneerProcess.veneer(arguments)
            try #require(r.status == 0, "veneer \(arguments.joined(separator: " ")): \(r.stderr)")
        }

        let r = try VeneerProcess.veneer(["run", dir + "/storage.toml"], timeout: 600)
        #expect(r.status == 0, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        #expect(r.stdout.contains("storvsc: all checks passed"), "\(r.stdout)")
        #expect(!r.stdout.contains("FAILED"), "\(r.stdout)")
        #expect(r.stdout.contains("storvsc: subchannels: CREATE_SUB_CHANNELS 3"), "\(r.stdout)")
        #expect(r.stdout.contains(image == "storvsc.bin" ? "storvsc: close: 4 channels closed" : "storvsc: exit with 4 channels open"),
                "\(r.stdout)")
        // Nothing the plugin or the VMBus host had to complain about.
        let complaints = r.stderr.split(separator: "\n").filter {
            ($0.hasPrefix("veneer: error:") || $0.hasPrefix("veneer: warning:"))
                && ($0.contains("scsi0") || $0.contains("storvsp") || $0.lowercased().contains("vmbus"))
        }
        #expect(complaints.isEmpty, "\(complaints.joined(separator: "\n"))")

        // The raw disk holds exactly the guest's pattern; the read-only disk is untouched.
        let raw = try Data(contentsOf: URL(fileURLWithPath: disks + "/disk.raw"))
        #expect(raw.count == 16 << 20)
        #expect(Self.firstMismatch(raw, lun: 1) == nil, "disk.raw: \(Self.firstMismatch(raw, lun: 1) ?? "")")
        let seed = try Data(contentsOf: URL(fileURLWithPath: disks + "/seed.raw"))
        #expect(seed.count == 8 << 20 && seed.allSatisfy { $0 == 0 }, "seed.raw (read-only LUN) was written")

        guard let qemuImg = Self.which("qemu-img") else {
            print("SKIPPED: qemu-img is not installed: the VHDX is not checked from the host")
            return
        }
        let check = try VeneerProcess.run(qemuImg, ["check", "-f", "vhdx", disks + "/disk.vhdx"])
        #expect(check.status == 0, "qemu-img check: \(check.stdout)\(check.stderr)")
        let converted = dir + "/disk-vhdx.raw"
        let convert = try VeneerProcess.run(qemuImg, ["convert", "-f", "vhdx", "-O", "raw", disks + "/disk.vhdx", converted])
        try #require(convert.status == 0, "qemu-img convert: \(convert.stderr)")
        let vhdx = try Data(contentsOf: URL(fileURLWithPath: converted))
        #expect(vhdx.count == 64 << 20)
        #expect(Self.firstMismatch(vhdx, lun: 0) == nil, "disk.vhdx: \(Self.firstMismatch(vhdx, lun: 0) ?? "")")
    }
}
