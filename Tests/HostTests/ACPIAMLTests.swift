import Testing
@testable import VeneerHost

/// Expected bytes come from the ACPI 6.5 grammar and were cross-checked against what iasl
/// 20200925 assembles from the equivalent ASL; where iasl writes an end-tag checksum of 0, Veneer
/// writes the real checksum (noted at each such expectation).
struct AMLPackageLengthTests {
    @Test(arguments: [
        (0, "00"), (63, "3F"),
        (64, "40 04"), (4095, "4F FF"),
        (4096, "80 00 01"), ((1 << 20) - 1, "8F FF FF"),
        (1 << 20, "C0 00 00 01"), ((1 << 28) - 1, "CF FF FF FF"),
    ])
    func encodesAtEachSizeBoundary(value: Int, expected: String) throws {
        let encoded = try AMLPackageLength.encode(value)
        #expect(encoded == hexBytes(expected))
        let decoded = try #require(decodePackageLength(encoded))
        #expect(decoded.value == value && decoded.size == encoded.count)
    }

    @Test func refusesLengthsPast28Bits() {
        #expect(throws: AMLError.lengthTooLarge(1 << 28)) { try AMLPackageLength.encode(1 << 28) }
        #expect(throws: AMLError.lengthTooLarge(-1)) { try AMLPackageLength.encode(-1) }
    }

    /// The length counts its own bytes, so a body one byte short of a limit may still need the
    /// next size: 62 + 1 = 63 fits one byte, 63 + 1 = 64 does not and becomes 63 + 2 = 65.
    @Test(arguments: [
        (62, 1, 63), (63, 2, 65),
        (4093, 2, 4095), (4094, 3, 4097),
        ((1 << 20) - 4, 3, (1 << 20) - 1), ((1 << 20) - 3, 4, (1 << 20) + 1),
    ])
    func wrapCountsItsOwnBytes(bodySize: Int, lengthSize: Int, total: Int) throws {
        let body = [UInt8](repeating: 0xAA, count: bodySize)
        let wrapped = try AMLPackageLength.wrap(body)
        let decoded = try #require(decodePackageLength(wrapped))
        #expect(decoded.size == lengthSize)
        #expect(decoded.value == total)
        #expect(wrapped.count == total, "PkgLength covers itself and the body, nothing else")
        #expect(Array(wrapped.dropFirst(lengthSize)) == body)
    }

    @Test func wrapRefusesBodiesPastTheMaximum() {
        let body = [UInt8](repeating: 0, count: (1 << 28) - 4)
        #expect(throws: AMLError.self) { try AMLPackageLength.wrap(body) }
    }
}

struct AMLNameStringTests {
    @Test(arguments: [
        ("_HID", "5F 48 49 44"),
        ("B", "42 5F 5F 5F"),
        ("_S5", "5F 53 35 5F"),
        ("\\", "5C 00"),
        ("^^XX", "5E 5E 58 58 5F 5F"),
        ("\\_SB.ABCD", "5C 2E 5F 53 42 5F 41 42 43 44"),
        ("\\_SB.COM1.XY", "5C 2F 03 5F 53 42 5F 43 4F 4D 31 58 59 5F 5F"),
        ("_SB.COM1.YY", "2F 03 5F 53 42 5F 43 4F 4D 31 59 59 5F 5F"),
    ])
    func encodesPrefixesAndSegments(name: String, expected: String) throws {
        #expect(try AMLNameString(name).encoded == hexBytes(expected))
    }

    @Test(arguments: ["", "^", "ABCDE", "1ABC", "_SB..X", "_sb", "A-B", "\\^X", "_SB.", "É"])
    func refusesInvalidNames(name: String) {
        #expect(throws: AMLError.self) { try AMLNameString(name) }
    }
}

struct AMLDataTests {
    @Test(arguments: [
        (UInt64(0), "00"), (1, "01"), (2, "0A 02"), (0xFF, "0A FF"),
        (0x100, "0B 00 01"), (0xFFFF, "0B FF FF"),
        (0x1_0000, "0C 00 00 01 00"), (0xFFFF_FFFF, "0C FF FF FF FF"),
        (0x1_0000_0000, "0E 00 00 00 00 01 00 00 00"), (UInt64.max, "FF"),
        (0x1_2345_6789, "0E 89 67 45 23 01 00 00 00"),
    ])
    func integersTakeTheShortestEncoding(value: UInt64, expected: String) throws {
        #expect(try AMLData.integer(value).encoded() == hexBytes(expected))
    }

    @Test func stringsAreNulTerminatedASCII() throws {
        #expect(try AMLData.string("").encoded() == hexBytes("0D 00"))
        #expect(try AMLData.string("VMBus").encoded() == hexBytes("0D 56 4D 42 75 73 00"))
        #expect(throws: AMLError.invalidString("a\u{0}b")) { try AMLData.string("a\u{0}b").encoded() }
        #expect(throws: AMLError.invalidString("é")) { try AMLData.string("é").encoded() }
    }

    @Test(arguments: [
        ("PNP0501", UInt32(0x0105_D041)), ("PNP0B00", 0x000B_D041), ("PNP0303", 0x0303_D041),
        ("PNP0F13", 0x130F_D041), ("PNP0100", 0x0001_D041), ("PNP0A03", 0x030A_D041),
    ])
    func eisaIDsCompressToTheirKnownValues(id: String, value: UInt32) throws {
        #expect(try EISAID.compress(id) == value)
    }

    @Test(arguments: ["PNP050", "PNP05011", "pnp0501", "PNP050G", "P1P0501", "PNP05f1"])
    func refusesMalformedEISAIDs(id: String) {
        #expect(throws: AMLError.invalidEISAID(id)) { try EISAID.compress(id) }
    }

    @Test func eisaIDIsAlwaysADWord() throws {
        #expect(try AMLData.eisaID("PNP0501").encoded() == hexBytes("0C 41 D0 05 01"))
    }

    @Test func buffersAndPackages() throws {
        #expect(try AMLData.buffer([1, 2, 3]).encoded() == hexBytes("11 06 0A 03 01 02 03"))
        #expect(try AMLData.buffer([]).encoded() == hexBytes("11 02 00"))
        let package = AMLData.package([.integer(1), .string("ab"), .integer(0x1234), .integer(0x1234_5678), .integer(0x1_2345_6789)])
        #expect(try package.encoded() == hexBytes(
            "12 18 05 01 0D 61 62 00 0B 34 12 0C 78 56 34 12 0E 89 67 45 23 01 00 00 00"))
        #expect(throws: AMLError.tooManyElements(256)) {
            try AMLData.package(Array(repeating: .integer(0), count: 256)).encoded()
        }
    }

    @Test func largeBuffersUseLongerPackageLengths() throws {
        let encoded = try AMLData.buffer(Array(repeating: 7, count: 100)).encoded()
        // BufferOp, PkgLength(2 bytes) covering itself + BytePrefix 100 + 100 bytes = 104.
        #expect(Array(encoded.prefix(5)) == hexBytes("11 48 06 0A 64"))
        #expect(encoded.count == 1 + 104)
    }
}

struct AMLTermTests {
    @Test func namesAndMethods() throws {
        #expect(try AMLTerm.name("_HID", .eisaID("PNP0501")).encoded() == hexBytes("08 5F 48 49 44 0C 41 D0 05 01"))
        #expect(try AMLTerm.name("_UID", .integer(1)).encoded() == hexBytes("08 5F 55 49 44 01"))
        #expect(try AMLTerm.name("^^XX", .integer(.max)).encoded() == hexBytes("08 5E 5E 58 58 5F 5F FF"))
        #expect(try AMLTerm.method("_STA", serialized: true, returns: .integer(0x0F)).encoded()
                == hexBytes("14 09 5F 53 54 41 08 A4 0A 0F"))
        #expect(try AMLTerm.method("_STA", returns: .integer(0x0F)).encoded()
                == hexBytes("14 09 5F 53 54 41 00 A4 0A 0F"))
        #expect(try AMLTerm.method("PKG", returns: .package([
            .integer(1), .string("ab"), .integer(0x1234), .integer(0x1234_5678), .integer(0x1_2345_6789),
        ])).encoded() == hexBytes(
            "14 20 50 4B 47 5F 00 A4 12 18 05 01 0D 61 62 00 0B 34 12 0C 78 56 34 12 0E 89 67 45 23 01 00 00 00"))
        #expect(try AMLTerm.method("ARGS", arguments: 7, serialized: true, returns: .integer(0)).encoded()
                == hexBytes("14 08 41 52 47 53 0F A4 00"))
        #expect(throws: AMLError.invalidArgumentCount(8)) { try AMLTerm.method("X", arguments: 8, returns: .integer(0)).encoded() }
    }

    @Test func s5Package() throws {
        #expect(try AMLTerm.name("_S5", .package([.integer(5), .integer(5), .integer(0), .integer(0)])).encoded()
                == hexBytes("08 5F 53 35 5F 12 08 04 0A 05 0A 05 00 00"))
    }

    @Test func scopeOfTheRoot() throws {
        #expect(try AMLTerm.scope("\\", [.name("ZZ", .string(""))]).encoded() == hexBytes("10 0A 5C 00 08 5A 5A 5F 5F 0D 00"))
    }

    /// The VMBus device as iasl assembles it, except the end tag's checksum: 0x87 makes 79 87 sum
    /// to zero where iasl writes 79 00.
    @Test func vmbusDevice() throws {
        let device = AMLTerm.device("VMBS", [
            .name("_HID", .string("VMBus")),
            .name("_UID", .integer(0)),
            .method("_STA", returns: .integer(0x0F)),
            .name("_CRS", .resourceTemplate([])),
        ])
        #expect(try device.encoded() == hexBytes("""
            5B 82 2C 56 4D 42 53 08 5F 48 49 44 0D 56 4D 42 75 73 00 08 5F 55 49 44 00
            14 09 5F 53 54 41 00 A4 0A 0F 08 5F 43 52 53 11 05 0A 02 79 87
            """))
    }

    @Test func invalidNamesSurfaceFromNestedTerms() {
        #expect(throws: AMLError.invalidName("bad", reason: "segment \"bad\" must be A-Z or _ then A-Z, 0-9 or _")) {
            try AMLTerm.scope("\\_SB", [.device("DEV", [.name("bad", .integer(0))])]).encoded()
        }
    }
}

struct ResourceDescriptorTests {
    @Test func smallDescriptors() throws {
        #expect(try ResourceDescriptor.io(minimum: 0x3F8, maximum: 0x3F8, alignment: 1, length: 8).encoded()
                == hexBytes("47 01 F8 03 F8 03 01 08"))
        #expect(try ResourceDescriptor.io(minimum: 0x60, maximum: 0x60, alignment: 0, length: 1, decode16: false).encoded()
                == hexBytes("47 00 60 00 60 00 00 01"))
        #expect(try ResourceDescriptor.fixedIO(base: 0x60, length: 1).encoded() == hexBytes("4B 60 00 01"))
        #expect(try ResourceDescriptor.irqNoFlags([4]).encoded() == hexBytes("22 10 00"))
        #expect(try ResourceDescriptor.irqNoFlags([1, 12]).encoded() == hexBytes("22 02 10"))
        #expect(try ResourceDescriptor.irq([9], trigger: .level, polarity: .activeHigh, shared: true).encoded()
                == hexBytes("23 00 02 10"))
        #expect(try ResourceDescriptor.irq([3], trigger: .edge, polarity: .activeLow, shared: false).encoded()
                == hexBytes("23 08 00 09"))
    }

    @Test func largeDescriptors() throws {
        #expect(try ResourceDescriptor.interrupt([17], trigger: .edge, polarity: .activeHigh, shared: false).encoded()
                == hexBytes("89 06 00 03 01 11 00 00 00"))
        #expect(try ResourceDescriptor.interrupt([20, 21], trigger: .level, polarity: .activeLow, shared: true).encoded()
                == hexBytes("89 0A 00 0D 02 14 00 00 00 15 00 00 00"))
        #expect(try ResourceDescriptor.memory32Fixed(base: 0xFEC0_0000, length: 0x1000).encoded()
                == hexBytes("86 09 00 01 00 00 C0 FE 00 10 00 00"))
        let dwordMemory = AddressSpaceDescriptor(
            width: .dword, kind: .memory(.nonCacheable, writable: true), producer: true,
            minimum: 0xC000_0000, maximum: 0xFEBF_FFFF)
        #expect(try ResourceDescriptor.addressSpace(dwordMemory).encoded() == hexBytes("""
            87 17 00 00 0C 01 00 00 00 00 00 00 00 C0 FF FF BF FE 00 00 00 00 00 00 C0 3E
            """))
        let qwordMemory = AddressSpaceDescriptor(
            width: .qword, kind: .memory(.cacheable, writable: true), producer: true,
            minimum: 0x1_0000_0000, maximum: 0x1_FFFF_FFFF)
        #expect(try ResourceDescriptor.addressSpace(qwordMemory).encoded() == hexBytes("""
            8A 2B 00 00 0C 03 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 FF FF FF FF 01 00 00 00
            00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00
            """))
        let dwordIO = AddressSpaceDescriptor(width: .dword, kind: .io, producer: true, minimum: 0x0D00, maximum: 0xFFFF)
        #expect(try ResourceDescriptor.addressSpace(dwordIO).encoded() == hexBytes("""
            87 17 00 01 0C 03 00 00 00 00 00 0D 00 00 FF FF 00 00 00 00 00 00 00 F3 00 00
            """))
        let qwordIOConsumer = AddressSpaceDescriptor(width: .qword, kind: .io, producer: false, minimum: 0x1000, maximum: 0x1FFF)
        #expect(try ResourceDescriptor.addressSpace(qwordIOConsumer).encoded().prefix(6) == hexBytes("8A 2B 00 01 0D 03")[...])
        // iasl: WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0xFF, 0, 0x100)
        let busNumbers = AddressSpaceDescriptor(width: .word, kind: .busNumbers, producer: true, minimum: 0, maximum: 0xFF)
        #expect(try ResourceDescriptor.addressSpace(busNumbers).encoded() == hexBytes("""
            88 0D 00 02 0C 00 00 00 00 00 FF 00 00 00 00 01
            """))
    }

    @Test func templateEndsWithAChecksummedEndTag() throws {
        let template = try ResourceDescriptor.template([.io(minimum: 0x70, maximum: 0x70, alignment: 1, length: 2), .irqNoFlags([8])])
        #expect(Array(template.prefix(11)) == hexBytes("47 01 70 00 70 00 01 02 22 00 01"))
        #expect(template[11] == 0x79)
        #expect(byteSum(template) == 0)
        #expect(try ResourceDescriptor.template([]) == hexBytes("79 87"))
    }

    @Test func refusesDescriptorsThatCannotBeEncoded() {
        #expect(throws: AMLError.self) { try ResourceDescriptor.irqNoFlags([16]).encoded() }
        #expect(throws: AMLError.self) { try ResourceDescriptor.fixedIO(base: 0x400, length: 1).encoded() }
        #expect(throws: AMLError.self) { try ResourceDescriptor.io(minimum: 2, maximum: 1, alignment: 1, length: 1).encoded() }
        #expect(throws: AMLError.self) { try ResourceDescriptor.interrupt([], trigger: .edge, polarity: .activeHigh, shared: false).encoded() }
        #expect(throws: AMLError.self) { try ResourceDescriptor.memory32Fixed(base: 0xFFFF_F000, length: 0x2000).encoded() }
        let tooWide = AddressSpaceDescriptor(width: .dword, kind: .io, producer: true, minimum: 0, maximum: 0x1_0000_0000)
        #expect(throws: AMLError.self) { try ResourceDescriptor.addressSpace(tooWide).encoded() }
        let tooWideWord = AddressSpaceDescriptor(width: .word, kind: .busNumbers, producer: true, minimum: 0, maximum: 0x1_0000)
        #expect(throws: AMLError.self) { try ResourceDescriptor.addressSpace(tooWideWord).encoded() }
        let everything = AddressSpaceDescriptor(width: .qword, kind: .io, producer: true, minimum: 0, maximum: .max)
        #expect(throws: AMLError.self) { try ResourceDescriptor.addressSpace(everything).encoded() }
    }
}
