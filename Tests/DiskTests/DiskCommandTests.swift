import Foundation
import Testing
import VHDXFormat

// `veneer disk create|info|check` as a user runs them: statuses, one-line errors, what info
// and check print. Needs the built `veneer` (swift build builds it); SKIPPED when it is absent.

private let veneer: String? = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    return [root + "/.build/debug/veneer", root + "/.build/release/veneer"].first { FileManager.default.isExecutableFile(atPath: $0) }
}()

@Suite struct DiskCommandTests {
    @Test func createInfoCheckAndRefusals() throws {
        guard let veneer else { print("SKIPPED: .build/debug/veneer is not built (run swift build)"); return }
        let dir = try TempDirectory()
        defer { dir.remove() }
        let disk = dir.file("d.vhdx"), child = dir.file("child.vhdx"), raw = dir.file("r.img")
        #expect(runTool(veneer, ["disk", "create", disk, "--size", "64M", "--block-size", "1M"])?.status == 0)
        #expect(runTool(veneer, ["disk", "create", child, "--parent", disk])?.status == 0)
        #expect(runTool(veneer, ["disk", "create", raw, "--size", "1G"])?.status == 0)

        let exists = runTool(veneer, ["disk", "create", disk, "--size", "64M"])
        #expect(exists?.status == 73 && exists?.output.contains("File exists") == true)
        #expect(runTool(veneer, ["disk", "create", dir.file("x.vhdx"), "--size", "12Q"])?.status == 64)
        #expect(runTool(veneer, ["disk", "create", dir.file("x.img"), "--size", "1M", "--type", "fixed"])?.status == 64)
        #expect(runTool(veneer, ["disk", "create", dir.file("x.vhdx"), "--size", "1M", "--block-size", "3M"])?.status == 64)
        #expect(runTool(veneer, ["disk", "create", dir.file("x.vhdx")])?.status == 64)

        let info = try #require(runTool(veneer, ["disk", "info", "--json", child]))
        #expect(info.status == 0)
        #expect(info.output.contains("\"format\": \"vhdx\"") && info.output.contains("\"type\": \"differencing\""))
        #expect(info.output.contains("\"virtual_size\": 67108864") && info.output.contains("d.vhdx\"]"))
        let rawInfo = try #require(runTool(veneer, ["disk", "info", raw]))
        #expect(rawInfo.status == 0 && rawInfo.output.contains("format: raw") && rawInfo.output.contains("1073741824 bytes"))

        for path in [disk, child, raw] {
            let check = runTool(veneer, ["disk", "check", path])
            #expect(check?.status == 0 && check?.output.contains("ok") == true, "\(check?.output ?? "")")
        }
        #expect(runTool(veneer, ["disk", "check", dir.file("missing.vhdx")])?.status == 66)
    }

    @Test func checkReportsEachProblemOnItsOwnLine() throws {
        guard let veneer else { print("SKIPPED: .build/debug/veneer is not built (run swift build)"); return }
        let dir = try TempDirectory()
        defer { dir.remove() }
        let disk = dir.file("d.vhdx")
        #expect(runTool(veneer, ["disk", "create", disk, "--size", "16M", "--block-size", "1M"])?.status == 0)
        // One damaged header: still usable, but check says so.
        try patchFile(disk, at: VHDXLayout.headerOffsets[0] + 300, [0x42])
        let one = try #require(runTool(veneer, ["disk", "check", disk]))
        #expect(one.status == 65)
        #expect(one.output.split(separator: "\n").count == 1 && one.output.contains("header 1 is invalid"))
        // And a BAT entry beyond the end of the file: two lines.
        var entry = [UInt8](repeating: 0, count: 8)
        entry.putU64(6 | 900 << 20, at: 0)
        try patchFile(disk, at: 3 << 20, entry)
        let two = try #require(runTool(veneer, ["disk", "check", disk]))
        #expect(two.status == 65)
        let lines = two.output.split(separator: "\n")
        #expect(lines.count == 2 && lines.allSatisfy { $0.hasPrefix("veneer: \(disk): ") })
        #expect(two.output.contains("BAT entry 0") && two.output.contains("beyond the end"))
    }

    @Test func checkRepairReplaysAPendingLog() throws {
        guard let veneer else { print("SKIPPED: .build/debug/veneer is not built (run swift build)"); return }
        let dir = try TempDirectory()
        defer { dir.remove() }
        let disk = dir.file("d.vhdx")
        #expect(runTool(veneer, ["disk", "create", disk, "--size", "16M", "--block-size", "1M"])?.status == 0)
        // A pending log entry that allocates block 0 at 4 MiB (the data is already there).
        try patchFile(disk, at: 4 << 20, pattern(1 << 20, seed: 3))
        var bat = try readFile(disk, at: 3 << 20, count: 4096)
        bat.putU64(6 | 4 << 20, at: 0)
        let guid = VHDXGUID.random()
        let entry = VHDXLogEntry(sequenceNumber: 1, tail: 0, logGUID: guid, flushedFileOffset: 4 << 20, lastFileOffset: 5 << 20,
                                 descriptors: [.data(fileOffset: 3 << 20, data: bat)])
        try patchFile(disk, at: 1 << 20, entry.encode())
        var header = try VHDXHeader.decode(readFile(disk, at: VHDXLayout.headerOffsets[1], count: 4096))
        header.logGUID = guid
        header.sequenceNumber += 1
        try patchFile(disk, at: VHDXLayout.headerOffsets[0], header.encode())

        let dirty = try #require(runTool(veneer, ["disk", "check", disk]))
        #expect(dirty.status == 65 && dirty.output.contains("not yet replayed") && dirty.output.split(separator: "\n").count == 1, "\(dirty.output)")
        let repaired = try #require(runTool(veneer, ["disk", "check", "--repair", disk]))
        #expect(repaired.status == 0, "\(repaired.output)")
        #expect(runTool(veneer, ["disk", "info", "--json", disk])?.output.contains("\"allocated\": 1048576") == true)
    }
}
