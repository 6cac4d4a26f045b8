import Testing
import VHDXFormat

// Sizes and field offsets of the VHDX structures, with the numbers written out from [MS-VHDX]
// (2.2.2 header, 2.2.3 region table, 2.3.1 log entry, 2.5.1 BAT entry, 2.6.1 metadata table),
// not from the encoder, so an encoder that moves a field fails here.

@Suite struct VHDXLayoutTests {
    @Test func crc32cMatchesTheCastagnoliCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    @Test func guidBytesAreMixedEndian() {
        let bat = VHDXRegionTable.batGUID
        #expect(bat.bytes == [0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08])
        #expect(bat.description == "2DC27766-F623-4200-9D64-115E9BFD4A08")
        #expect(VHDXGUID("{2dc27766-f623-4200-9d64-115e9bfd4a08}") == bat)
        #expect(VHDXGUID("2DC27766-F623-4200-9D64") == nil)
        let r = VHDXGUID.random()
        #expect(VHDXGUID(r.description) == r)
        #expect(r.bytes[7] >> 4 == 4)
    }

    @Test func wellKnownGUIDsAreTheSpecsValues() {
        let known: [(VHDXGUID, String)] = [
            (VHDXRegionTable.batGUID, "2DC27766-F623-4200-9D64-115E9BFD4A08"),
            (VHDXRegionTable.metadataGUID, "8B7CA206-4790-4B9A-B8FE-575F050F886E"),
            (VHDXMetadataItem.fileParameters, "CAA16737-FA36-4D43-B3B6-33F0AA44E76B"),
            (VHDXMetadataItem.virtualDiskSize, "2FA54224-CD1B-4876-B211-5DBED83BF4B8"),
            (VHDXMetadataItem.page83Data, "BECA12AB-B2E6-4523-93EF-C309E000C746"),
            (VHDXMetadataItem.logicalSectorSize, "8141BF1D-A96F-4709-BA47-F233A8FAAB5F"),
            (VHDXMetadataItem.physicalSectorSize, "CDA348C7-445D-4471-9CC9-E9885251C556"),
            (VHDXMetadataItem.parentLocator, "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"),
            (VHDXParentLocator.vhdxLocatorType, "B04AEFB7-D19E-4A81-B789-25B8E9445913"),
        ]
        for (guid, text) in known {
            #expect(guid.description == text)
            #expect(VHDXGUID(text) == guid)
        }
    }

    @Test func fileIdentifier() {
        let b = VHDXFileIdentifier(creator: "Veneer").encode()
        #expect(b.count == 520)
        #expect(Array(b[0..<8]) == Array("vhdxfile".utf8))
        #expect(Array(b[8..<12]) == [0x56, 0, 0x65, 0])  // "Ve" in UTF-16LE
        #expect((try? VHDXFileIdentifier.decode(b))?.creator == "Veneer")
    }

    @Test func headerFieldOffsets() throws {
        let g1 = VHDXGUID.random(), g2 = VHDXGUID.random(), g3 = VHDXGUID.random()
        let h = VHDXHeader(sequenceNumber: 0x1122_3344_5566_7788, fileWriteGUID: g1, dataWriteGUID: g2, logGUID: g3,
                           logVersion: 0, version: 1, logLength: 0x10_0000, logOffset: 0x20_0000)
        let b = h.encode()
        #expect(b.count == 4096)
        #expect(Array(b[0..<4]) == Array("head".utf8))
        #expect(b.u64(at: 8) == 0x1122_3344_5566_7788)
        #expect(Array(b[16..<32]) == g1.bytes)
        #expect(Array(b[32..<48]) == g2.bytes)
        #expect(Array(b[48..<64]) == g3.bytes)
        #expect(b.u16(at: 64) == 0)
        #expect(b.u16(at: 66) == 1)
        #expect(b.u32(at: 68) == 0x10_0000)
        #expect(b.u64(at: 72) == 0x20_0000)
        #expect(b[80...].allSatisfy { $0 == 0 })
        #expect(b.u32(at: 4) == CRC32C.checksum(b, zeroingFieldAt: 4))
        #expect(try VHDXHeader.decode(b) == h)
        var flipped = b
        flipped[100] ^= 1
        #expect(throws: VHDXFormatError.self) { try VHDXHeader.decode(flipped) }
    }

    @Test func regionTableFieldOffsets() throws {
        let t = VHDXRegionTable(entries: [.init(guid: VHDXRegionTable.metadataGUID, fileOffset: 0x30_0000, length: 0x10_0000, required: true)])
        let b = t.encode()
        #expect(b.count == 65536)
        #expect(Array(b[0..<4]) == Array("regi".utf8))
        #expect(b.u32(at: 8) == 1)
        #expect(Array(b[16..<32]) == VHDXRegionTable.metadataGUID.bytes)
        #expect(b.u64(at: 32) == 0x30_0000)
        #expect(b.u32(at: 40) == 0x10_0000)
        #expect(b.u32(at: 44) == 1)
        #expect(b.u32(at: 4) == CRC32C.checksum(b, zeroingFieldAt: 4), "the checksum covers all 64 KiB")
        #expect(try VHDXRegionTable.decode(b) == t)
    }

    @Test func metadataTableAndItems() throws {
        let t = VHDXMetadataTable(entries: [.init(itemID: VHDXMetadataItem.logicalSectorSize, offset: 0x1_0000, length: 4, isVirtualDisk: true, isRequired: true)])
        let b = t.encode()
        #expect(Array(b[0..<8]) == Array("metadata".utf8))
        #expect(b.u16(at: 10) == 1)
        #expect(Array(b[32..<48]) == VHDXMetadataItem.logicalSectorSize.bytes)
        #expect(b.u32(at: 48) == 0x1_0000)
        #expect(b.u32(at: 52) == 4)
        #expect(b.u32(at: 56) == 6, "IsVirtualDisk (bit 1) | IsRequired (bit 2)")
        #expect(try VHDXMetadataTable.decode(b) == t)
        let p = VHDXFileParameters(blockSize: 32 << 20, leaveBlocksAllocated: true, hasParent: true).encode()
        #expect(p == [0, 0, 0, 2, 3, 0, 0, 0])
    }

    @Test func parentLocatorRoundTrip() throws {
        let l = VHDXParentLocator(entries: [("parent_linkage", "{2DC27766-F623-4200-9D64-115E9BFD4A08}"), ("relative_path", "..\\base.vhdx")])
        let b = l.encode()
        #expect(Array(b[0..<16]) == VHDXParentLocator.vhdxLocatorType.bytes)
        #expect(b.u16(at: 18) == 2)
        #expect(b.u32(at: 20) == 20 + 24, "the first key follows the header and both entries")
        #expect(b.u16(at: 28) == 28, "\"parent_linkage\" is 14 UTF-16 units")
        #expect(try VHDXParentLocator.decode(b) == l)
        var bad = b
        bad.putU32(9999, at: 24)
        #expect(throws: VHDXFormatError.self) { try VHDXParentLocator.decode(bad) }
    }

    @Test func batEntryBitsAndInterleaving() {
        let e = VHDXBATEntry(state: .fullyPresent, fileOffset: 5 << 20)
        #expect(e.raw == 5 << 20 | 6)
        #expect(e.fileOffset == 5 << 20)
        #expect(VHDXBATEntry(raw: 3).state == nil)
        #expect(VHDXBATEntry.State.unmapped.rawValue == 5)
        let g = VHDXBATGeometry(virtualSize: 10 << 30, blockSize: 32 << 20, logicalSectorSize: 512, hasParent: false)
        #expect(g.chunkRatio == 128)
        #expect(g.payloadBlocks == 320)
        #expect(g.totalEntries == 320 + 2)
        #expect(g.payloadEntryIndex(block: 128) == 129)
        #expect(g.sectorBitmapEntryIndex(chunk: 0) == 128)
        let d = VHDXBATGeometry(virtualSize: 10 << 30, blockSize: 2 << 20, logicalSectorSize: 4096, hasParent: true)
        #expect(d.chunkRatio == 16384)
        #expect(d.totalEntries == 16385)
    }

    @Test func logEntryLayout() throws {
        let guid = VHDXGUID.random()
        var sector = [UInt8](repeating: 0xAB, count: 4096)
        sector.putU64(0x0102_0304_0506_0708, at: 0)
        sector.putU32(0xCAFE_F00D, at: 4092)
        let e = VHDXLogEntry(sequenceNumber: 0x1_0000_0002, tail: 0x3000, logGUID: guid, flushedFileOffset: 8 << 20, lastFileOffset: 9 << 20,
                             descriptors: [.zero(fileOffset: 0x40_0000, length: 0x2000), .data(fileOffset: 0x30_0000, data: sector)])
        let b = e.encode()
        #expect(b.count == 8192, "one descriptor sector, one data sector")
        #expect(Array(b[0..<4]) == Array("loge".utf8))
        #expect(b.u32(at: 8) == 8192)
        #expect(b.u32(at: 12) == 0x3000)
        #expect(b.u64(at: 16) == 0x1_0000_0002)
        #expect(b.u32(at: 24) == 2)
        #expect(Array(b[32..<48]) == guid.bytes)
        #expect(b.u64(at: 48) == 8 << 20)
        #expect(b.u64(at: 56) == 9 << 20)
        // Zero descriptor at 64, data descriptor at 96.
        #expect(Array(b[64..<68]) == Array("zero".utf8))
        #expect(b.u64(at: 72) == 0x2000)
        #expect(b.u64(at: 80) == 0x40_0000)
        #expect(b.u64(at: 88) == 0x1_0000_0002)
        #expect(Array(b[96..<100]) == Array("desc".utf8))
        #expect(b.u32(at: 100) == 0xCAFE_F00D, "trailing bytes: the sector's last 4")
        #expect(b.u64(at: 104) == 0x0102_0304_0506_0708, "leading bytes: the sector's first 8")
        #expect(b.u64(at: 112) == 0x30_0000)
        // The data sector: "data", sequence high, bytes 8..<4092, sequence low.
        #expect(Array(b[4096..<4100]) == Array("data".utf8))
        #expect(b.u32(at: 4100) == 1)
        #expect(b[4104] == 0xAB)
        #expect(b.u32(at: 8188) == 2)
        #expect(try VHDXLogEntry.decode(b) == e)
        var bad = b
        bad[5000] ^= 0xFF
        #expect(throws: VHDXFormatError.self) { try VHDXLogEntry.decode(bad) }
    }
}
