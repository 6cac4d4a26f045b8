import Foundation
import Testing
import VHDXFormat
@testable import VeneerDisk

// Files with a pending log, crafted by hand the way a crash leaves them: the payload is in
// place, the BAT update only in the log. Opening writable must replay it; a torn entry must be
// ignored; an entry that is valid but points where no log may write must be refused.

@Suite struct VHDXLogReplayTests {
    /// A dynamic 16 MiB disk (1 MiB blocks, BAT at 3 MiB, payload from 4 MiB) whose block 0
    /// data sits at 4 MiB while the BAT still says not present; returns the path and the data.
    func craft(in dir: TempDirectory, entries: (VHDXGUID, [UInt8]) -> [(logOffset: UInt64, bytes: [UInt8])]) throws -> (String, [UInt8]) {
        let path = dir.file("log.vhdx")
        try VHDXImage.create(path: path, options: .init(type: .dynamic, virtualSize: 16 << 20, blockSize: 1 << 20))
        let data = pattern(1 << 20, seed: 42)
        try patchFile(path, at: 4 << 20, data)
        var batSector = try readFile(path, at: 3 << 20, count: 4096)
        batSector.putU64(VHDXBATEntry(state: .fullyPresent, fileOffset: 4 << 20).raw, at: 0)
        let guid = VHDXGUID.random()
        for entry in entries(guid, batSector) { try patchFile(path, at: (1 << 20) + entry.logOffset, entry.bytes) }
        var header = try VHDXHeader.decode(readFile(path, at: VHDXLayout.headerOffsets[1], count: 4096))
        header.logGUID = guid
        header.sequenceNumber += 1
        try patchFile(path, at: VHDXLayout.headerOffsets[0], header.encode())
        return (path, data)
    }

    func entry(_ guid: VHDXGUID, seq: UInt64, tail: UInt32 = 0, flushed: UInt64 = 4 << 20, _ descriptors: [VHDXLogEntry.Descriptor]) -> [UInt8] {
        VHDXLogEntry(sequenceNumber: seq, tail: tail, logGUID: guid, flushedFileOffset: flushed, lastFileOffset: 5 << 20, descriptors: descriptors).encode()
    }

    @Test func pendingEntryIsReplayedOnWritableOpen() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (path, data) = try craft(in: dir) { guid, bat in
            [(UInt64(0), entry(guid, seq: 7, [.data(fileOffset: 3 << 20, data: bat)]))]
        }
        let refused = try #require(throws: DiskError.self) { try VHDXImage.open(path: path, readOnly: true) }
        #expect(refused.message.contains("replay"))
        do {
            let image = try VHDXImage.open(path: path, readOnly: false)
            #expect(image.replayedLogEntries == 1)
            #expect(try DiskIO.read(image, at: 0, count: 1 << 20) == data)
            let headers = try VHDXLayout.headerOffsets.map { try VHDXHeader.decode(readFile(path, at: $0, count: 4096)) }
            #expect(headers.allSatisfy { $0.logGUID.isZero }, "the log GUID is cleared once applied")
        }
        #expect(try DiskIO.read(VHDXImage.open(path: path, readOnly: true), at: 0, count: 1 << 20) == data)
    }

    @Test func sequenceOfTwoEntriesIsReplayedInOrderWithZeroDescriptor() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        var firstLength = 0
        let (path, data) = try craft(in: dir) { guid, bat in
            var stale = bat
            stale.putU64(VHDXBATEntry(state: .fullyPresent, fileOffset: 4 << 20).raw, at: 8)  // block 1 too; the next entry undoes it
            let first = entry(guid, seq: 20, tail: 0, [.data(fileOffset: 3 << 20, data: stale)])
            firstLength = first.count
            let second = entry(guid, seq: 21, tail: 0, [.zero(fileOffset: 3 << 20, length: 4096), .data(fileOffset: 3 << 20, data: bat)])
            // An older complete sequence of the same log elsewhere: a lower sequence number, never the head.
            let old = entry(guid, seq: 3, tail: 0x8_0000, [.zero(fileOffset: 4 << 20, length: 1 << 20)])
            return [(0, first), (UInt64(first.count), second), (0x8_0000, old)]
        }
        #expect(firstLength == 8192)
        let image = try VHDXImage.open(path: path, readOnly: false)
        #expect(image.replayedLogEntries == 2)
        #expect(try DiskIO.read(image, at: 0, count: 1 << 20) == data)
        #expect(try DiskIO.read(image, at: 1 << 20, count: 4096) == [UInt8](repeating: 0, count: 4096), "the second entry's BAT sector wins")
    }

    @Test func tornEntryIsIgnored() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (path, _) = try craft(in: dir) { guid, bat in
            var torn = entry(guid, seq: 7, [.data(fileOffset: 3 << 20, data: bat)])
            torn[6000] ^= 0x55  // a data sector byte: the checksum no longer matches
            return [(UInt64(0), torn)]
        }
        let image = try VHDXImage.open(path: path, readOnly: false)
        #expect(image.replayedLogEntries == 0)
        #expect(try DiskIO.read(image, at: 0, count: 4096) == [UInt8](repeating: 0, count: 4096))
    }

    @Test func entryWritingOverTheHeadersIsRefused() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (path, _) = try craft(in: dir) { guid, bat in
            [(UInt64(0), entry(guid, seq: 7, [.data(fileOffset: 64 << 10, data: bat)]))]
        }
        let e = try #require(throws: DiskError.self) { try VHDXImage.open(path: path, readOnly: false) }
        #expect(e.kind == .corrupt && e.message.contains("log entry 7") && e.path == path)
    }

    @Test func entryNeedingALongerFileIsRefused() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let (path, _) = try craft(in: dir) { guid, bat in
            [(UInt64(0), entry(guid, seq: 7, flushed: 1 << 40, [.data(fileOffset: 3 << 20, data: bat)]))]
        }
        let e = try #require(throws: DiskError.self) { try VHDXImage.open(path: path, readOnly: false) }
        #expect(e.kind == .corrupt && e.message.contains("truncated"))
    }

    /// Veneer's own log: after a crash between the log write and its application (simulated by
    /// undoing the in-place BAT write), reopening replays the entry.
    @Test func veneersOwnLogEntryReplaysAfterLostInPlaceWrite() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.file("own.vhdx")
        try VHDXImage.create(path: path, options: .init(type: .dynamic, virtualSize: 16 << 20, blockSize: 1 << 20))
        let cleanBAT = try readFile(path, at: 3 << 20, count: 4096)
        let data = pattern(64 << 10, seed: 11)
        let image = try VHDXImage.open(path: path, readOnly: false)
        try DiskIO.write(image, at: 0, data)
        // "Crash": the image is never closed (log GUID stays set) and the BAT write is lost.
        let copy = dir.file("crashed.vhdx")
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        try patchFile(copy, at: 3 << 20, cleanBAT)
        let reopened = try VHDXImage.open(path: copy, readOnly: false)
        #expect(reopened.replayedLogEntries == 1)
        #expect(try DiskIO.read(reopened, at: 0, count: data.count) == data)
        withExtendedLifetime(image) {}
    }
}
