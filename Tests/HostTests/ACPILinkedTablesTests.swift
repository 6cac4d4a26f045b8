import Testing
@testable import VeneerHost

/// The relocatable ACPI tables fw-cfg serves, run through a small linker/loader interpreter the
/// way SeaBIOS and OVMF run "etc/table-loader": every pointer must resolve and every checksum
/// hold wherever the firmware puts the files.
@Suite struct ACPILinkedTablesTests {
    enum Command: Equatable {
        case allocate(file: String, alignment: UInt32, zone: UInt8)
        case pointer(destination: String, source: String, offset: Int, size: Int)
        case checksum(file: String, offset: Int, start: Int, length: Int)
    }

    static func u32(_ b: ArraySlice<UInt8>, _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(b[b.startIndex + at + $1]) << (8 * UInt32($1)) }
    }

    static func name(_ b: ArraySlice<UInt8>, _ at: Int) -> String {
        String(decoding: b[(b.startIndex + at)..<(b.startIndex + at + 56)].prefix { $0 != 0 }, as: UTF8.self)
    }

    static func decode(_ script: [UInt8]) -> [Command] {
        stride(from: 0, to: script.count, by: 128).compactMap { at in
            let e = script[at..<at + 128]
            switch u32(e, 0) {
            case 1: return .allocate(file: name(e, 4), alignment: u32(e, 60), zone: e[e.startIndex + 64])
            case 2: return .pointer(destination: name(e, 4), source: name(e, 60), offset: Int(u32(e, 116)), size: Int(e[e.startIndex + 120]))
            case 3: return .checksum(file: name(e, 4), offset: Int(u32(e, 60)), start: Int(u32(e, 64)), length: Int(u32(e, 68)))
            default: return nil
            }
        }
    }

    /// Runs the script with the files at `bases`; returns the patched files.
    static func link(_ linked: ACPILinkedTables, bases: [String: UInt64]) throws -> [String: [UInt8]] {
        var files = [ACPILinkedTables.tablesFile: linked.tables, ACPILinkedTables.rsdpFile: linked.rsdp]
        for command in decode(linked.loader) {
            switch command {
            case .allocate(let file, let alignment, _):
                let base = try #require(bases[file])
                #expect(base % UInt64(alignment) == 0)
            case .pointer(let destination, let source, let offset, let size):
                var bytes = try #require(files[destination])
                var value: UInt64 = 0
                for i in 0..<size { value |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
                value += try #require(bases[source])
                for i in 0..<size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
                files[destination] = bytes
            case .checksum(let file, let offset, let start, let length):
                var bytes = try #require(files[file])
                #expect(bytes[offset] == 0, "checksum fields start at zero")
                bytes[offset] = 0 &- bytes[start..<start + length].reduce(0, &+)
                files[file] = bytes
            }
        }
        return files
    }

    @Test func commandLayout() {
        let a = LinkerLoaderCommand.allocate(file: "etc/acpi/rsdp", alignment: 16, zone: .fSegment).encoded
        #expect(a.count == 128 && a[0] == 1 && Array(a[4..<17]) == Array("etc/acpi/rsdp".utf8) && a[17] == 0)
        #expect(a[60] == 16 && a[64] == 2)
        let p = LinkerLoaderCommand.addPointer(destination: "d", source: "s", offset: 0x1234, size: 8).encoded
        #expect(p[0] == 2 && p[4] == UInt8(ascii: "d") && p[60] == UInt8(ascii: "s") && p[116] == 0x34 && p[117] == 0x12 && p[120] == 8)
        let c = LinkerLoaderCommand.addChecksum(file: "f", offset: 9, start: 0x100, length: 36).encoded
        #expect(c[0] == 3 && c[60] == 9 && c[64] == 0 && c[65] == 1 && c[68] == 36)
        #expect(c[72...].allSatisfy { $0 == 0 })
    }

    @Test(arguments: [1, 4, 64])
    func theScriptLinksTheTablesAnywhere(vcpus: Int) throws {
        let linked = try ACPILinkedTables(vcpuCount: vcpus, devices: [])
        let script = Self.decode(linked.loader)
        #expect(script.prefix(2) == [.allocate(file: "etc/acpi/rsdp", alignment: 16, zone: 2),
                                     .allocate(file: "etc/acpi/tables", alignment: 64, zone: 1)])
        for tablesBase in [0x7FF0_0000, 0x10_0000] as [UInt64] {
            let files = try Self.link(linked, bases: ["etc/acpi/rsdp": 0xF_5A00, "etc/acpi/tables": tablesBase])
            let rsdp = try #require(files["etc/acpi/rsdp"]), tables = try #require(files["etc/acpi/tables"])
            #expect(rsdp[0..<20].reduce(0, &+) == 0 && rsdp.reduce(0, &+) == 0)
            func at(_ address: UInt64) -> ArraySlice<UInt8> {
                let offset = Int(address - tablesBase)
                let length = Int(Self.u32(tables[offset...], 4))
                return tables[offset..<offset + length]
            }
            func sig(_ t: ArraySlice<UInt8>) -> String { String(decoding: t.prefix(4), as: UTF8.self) }
            func u64(_ b: ArraySlice<UInt8>, _ offset: Int) -> UInt64 {
                (0..<8).reduce(0) { $0 | UInt64(b[b.startIndex + offset + $1]) << (8 * UInt64($1)) }
            }
            let xsdt = at(u64(rsdp[...], 24))
            #expect(sig(xsdt) == "XSDT" && xsdt.reduce(0, &+) == 0)
            let entries = (0..<(xsdt.count - 36) / 8).map { at(u64(xsdt, 36 + 8 * $0)) }
            #expect(entries.map(sig) == ["FACP", "APIC"])
            #expect(entries.allSatisfy { $0.reduce(0, &+) == 0 })
            let fadt = entries[0]
            #expect(sig(at(u64(fadt, 140))) == "DSDT" && at(u64(fadt, 140)).reduce(0, &+) == 0)
            #expect(UInt64(Self.u32(fadt, 40)) == u64(fadt, 140), "DSDT and X_DSDT agree")
            let facs = u64(fadt, 132)
            #expect(UInt64(Self.u32(fadt, 36)) == facs && facs % 64 == 0)
            #expect(String(decoding: tables[Int(facs - tablesBase)..<Int(facs - tablesBase) + 4], as: UTF8.self) == "FACS")
        }
    }

    @Test func unlinkedTablesHoldOffsetsAndZeroChecksums() throws {
        let linked = try ACPILinkedTables(vcpuCount: 2, devices: [])
        #expect(Array(linked.tables[0..<4]) == Array("FACS".utf8))
        #expect(linked.rsdp[8] == 0 && linked.rsdp[32] == 0)
        #expect(linked.loader.count % 128 == 0)
        #expect(throws: FirmwareError.self) { try ACPILinkedTables(vcpuCount: 0, devices: []) }
    }
}
