import ICProtocol
import Testing
import VeneerIC

// File-copy wire layouts (numbers from Linux include/uapi/linux/hyperv.h: hv_fcopy_hdr,
// hv_start_fcopy, hv_do_fcopy), and the host's copy sequence against a guest that
// behaves as Linux's hv_fcopy_uio_daemon.

private func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * $1) } }
private func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }
private func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }

@Suite struct FileCopyLayoutTests {
    @Test func sizesAndOffsetsMatchLinux() throws {
        #expect(FileCopyMessage.headerSize == 36 && FileCopyMessage.startSize == 1088 && FileCopyMessage.writeSize == 6196)
        #expect(FileCopyMessage.fragmentSize == 6144 && FileCopyMessage.pathUnits == 260)
        let start = try #require(StartFileCopy(fileName: Array("a.txt".utf16), pathName: Array("/tmp".utf16),
                                               flags: [.overwrite, .createPath], fileSize: 0x0102_0304_0506))
        let s = FileCopyMessage.start(start).encode()
        #expect(s.count == 1088 && u32(s, 0) == 0 && s[4..<36].allSatisfy { $0 == 0 })
        #expect(u16(s, 36) == 0x61 && u16(s, 36 + 10) == 0)          // file_name at 36
        #expect(u16(s, 556) == 0x2f && u16(s, 556 + 8) == 0)         // path_name at 36 + 520
        #expect(u32(s, 1076) == 3 && u64(s, 1080) == 0x0102_0304_0506)
        #expect(try FileCopyMessage.decode(s[...]) == .start(start))
        let w = FileCopyMessage.write(offset: 0x1_0000_0000, data: [1, 2, 3]).encode()
        #expect(w.count == 6196 && u32(w, 0) == 1 && u32(w, 36) == 0 && u64(w, 40) == 0x1_0000_0000 && u32(w, 48) == 3)
        #expect(Array(w[52..<55]) == [1, 2, 3] && w[55] == 0)
        #expect(try FileCopyMessage.decode(w[...]) == .write(offset: 0x1_0000_0000, data: [1, 2, 3]))
        #expect(FileCopyMessage.complete.encode().count == 36 && u32(FileCopyMessage.cancel.encode(), 0) == 3)
        var bad = w
        bad[48] = 0x01; bad[49] = 0x18   // size 6145
        #expect(throws: ICWireError.invalidField(structure: "file-copy write", field: "size", value: 6145)) { try FileCopyMessage.decode(bad[...]) }
        #expect(StartFileCopy(fileName: [], pathName: [], flags: [], fileSize: 0) == nil)
        #expect(StartFileCopy(fileName: Array(repeating: 0x61, count: 260), pathName: [], flags: [], fileSize: 0) == nil)
        #expect(ICStatus.diskFull == 0x8007_0070)
    }
}

/// What Linux's hv_fcopy_uio_daemon does with each request (tools/hv/hv_fcopy_uio_daemon.c):
/// START creates `path/name` (HV_ERROR_ALREADY_EXISTS without OVER_WRITE, HV_E_FAIL for a missing
/// directory without CREATE_PATH), WRITE pwrite()s (HV_ERROR_DISK_FULL when out of space),
/// COMPLETE closes, CANCEL has no case and gets HV_E_FAIL.
private struct LinuxFcopyDaemon {
    var files: [String: [UInt8]] = [:]
    var directories: Set<String> = ["/", "/tmp"]
    var capacity = Int.max
    var open: String?
    var log: [String] = []

    mutating func answer(_ message: FileCopyMessage) -> UInt32 {
        log.append(message.operation.description)
        switch message {
        case .start(let s):
            let dir = String(decoding: s.pathName, as: UTF16.self), name = String(decoding: s.fileName, as: UTF16.self)
            if !directories.contains(dir) {
                guard s.flags.contains(.createPath) else { return ICStatus.fail }
                directories.insert(dir)
            }
            let path = dir + "/" + name
            if files[path] != nil && !s.flags.contains(.overwrite) { return ICStatus.alreadyExists }
            files[path] = []
            open = path
            return ICStatus.ok
        case .write(let offset, let data):
            guard let path = open, var file = files[path] else { return ICStatus.fail }
            guard Int(offset) + data.count <= capacity else { return ICStatus.diskFull }
            if file.count < Int(offset) + data.count { file += [UInt8](repeating: 0, count: Int(offset) + data.count - file.count) }
            file.replaceSubrange(Int(offset)..<Int(offset) + data.count, with: data)
            files[path] = file
            return ICStatus.ok
        case .complete:
            open = nil
            return ICStatus.ok
        case .cancel:
            return ICStatus.fail
        }
    }
}

@Suite struct FileCopyTransferTests {
    static func source(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) } }

    private static func run(_ data: [UInt8], to path: String = "/tmp/f.bin", flags: FileCopyFlags = [], daemon: inout LinuxFcopyDaemon,
                            declaredSize: UInt64? = nil) throws -> FileCopyTransfer {
        let dir = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        let name = String(path.split(separator: "/").last ?? "")
        let start = try #require(StartFileCopy(fileName: Array(name.utf16), pathName: Array(dir.utf16), flags: flags,
                                               fileSize: declaredSize ?? UInt64(data.count)))
        var transfer = FileCopyTransfer(start: start) { offset, count in Array(data.dropFirst(Int(offset)).prefix(count)) }
        var next: FileCopyMessage? = transfer.begin()
        var steps = 0
        while let message = next, steps < 10_000 {
            // Through the wire form, as the guest would see it.
            let status = daemon.answer(try FileCopyMessage.decode(message.encode()[...]))
            next = transfer.answered(status: status)
            steps += 1
        }
        return transfer
    }

    @Test(arguments: [0, 1, 6143, 6144, 6145, 3 * 6144 + 17])
    func copiesEveryByteInFragments(size: Int) throws {
        var daemon = LinuxFcopyDaemon()
        let data = Self.source(size)
        let transfer = try Self.run(data, daemon: &daemon)
        #expect(transfer.outcome == .copied(bytes: UInt64(size)))
        #expect(daemon.files["/tmp/f.bin"] == data)
        let writes = (size + 6143) / 6144
        #expect(daemon.log == ["START_FILE_COPY"] + Array(repeating: "WRITE_TO_FILE", count: writes) + ["COMPLETE_FCOPY"])
    }

    @Test func anExistingFileIsRefusedWithoutOverwrite() throws {
        var daemon = LinuxFcopyDaemon()
        daemon.files["/tmp/f.bin"] = [9]
        let refused = try Self.run([1, 2], daemon: &daemon)
        #expect(refused.outcome == .failed("the guest refused to create the file (the file exists and overwrite was not asked for)"))
        #expect(daemon.log == ["START_FILE_COPY"] && daemon.files["/tmp/f.bin"] == [9])
        let replaced = try Self.run([1, 2], flags: .overwrite, daemon: &daemon)
        #expect(replaced.outcome == .copied(bytes: 2) && daemon.files["/tmp/f.bin"] == [1, 2])
    }

    @Test func aMissingDirectoryNeedsCreatePath() throws {
        var daemon = LinuxFcopyDaemon()
        #expect(try Self.run([1], to: "/new/dir/x", daemon: &daemon).outcome == .failed("the guest refused to create the file (status 0x80004005)"))
        #expect(try Self.run([1], to: "/new/dir/x", flags: .createPath, daemon: &daemon).outcome == .copied(bytes: 1))
    }

    @Test func aFullDiskCancelsTheCopy() throws {
        var daemon = LinuxFcopyDaemon()
        daemon.capacity = 10_000
        let transfer = try Self.run(Self.source(20_000), daemon: &daemon)
        #expect(transfer.outcome == .failed("the guest failed to write at offset 6144 (the guest's disk is full)"))
        #expect(daemon.log == ["START_FILE_COPY", "WRITE_TO_FILE", "WRITE_TO_FILE", "CANCEL_FCOPY"])
    }

    @Test func aHostFileShorterThanItsSizeIsCancelledNotPadded() throws {
        var daemon = LinuxFcopyDaemon()
        let transfer = try Self.run(Self.source(100), daemon: &daemon, declaredSize: 7000)
        #expect(transfer.outcome == .failed("the host file ended at 100 bytes, before its size 7000"))
        #expect(daemon.log == ["START_FILE_COPY", "CANCEL_FCOPY"])
    }

    @Test func unansweredRequestsEndOrCancel() throws {
        let start = try #require(StartFileCopy(fileName: [0x61], pathName: [0x2f], flags: [], fileSize: 10))
        var t = FileCopyTransfer(start: start) { _, count in [UInt8](repeating: 1, count: count) }
        _ = t.begin()
        #expect(t.unanswered("no answer within 30000 ms") == nil)
        #expect(t.outcome == .failed("START_FILE_COPY: no answer within 30000 ms"))
        var u = FileCopyTransfer(start: start) { _, count in [UInt8](repeating: 1, count: count) }
        _ = u.begin()
        #expect(u.answered(status: 0) == .write(offset: 0, data: [UInt8](repeating: 1, count: 10)))
        #expect(u.unanswered("no answer") == .cancel)
        #expect(u.answered(status: ICStatus.fail) == nil)   // Linux answers CANCEL with HV_E_FAIL
        #expect(u.outcome == .failed("WRITE_TO_FILE: no answer"))
        #expect(u.answered(status: 0) == nil, "nothing after the end")
    }
}
