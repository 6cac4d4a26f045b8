import Testing
@testable import VeneerHost

struct PlatformDescriptionTests {
    /// The DSDT bytes of a VM with the given devices, read back out of guest memory.
    func dsdt(_ devices: [ACPIDevice]) throws -> [UInt8] {
        let tables = try FirmwareTables(vcpuCount: 1, devices: devices)
        let memory = try GuestMemory(map: try MemoryMap.pc(ramBytes: 16 << 20))
        try tables.write(into: memory)
        let entry = try #require(tables.layout.table("DSDT"))
        return try memory.bytes(entry.address, count: entry.size)
    }

    @Test func pciHostPutsARootBridgeInTheDSDT() throws {
        let bytes = try dsdt([.systemBusTerms([PlatformDescription.pciRootBridge])])
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("PCI0") && text.contains("_BBN") && text.contains("_CRS"))
        // EISAID("PNP0A03") compresses to 0x030AD041, stored little-endian after a DWord prefix.
        #expect(bytes.indices.contains { i in Array(bytes[i..<min(i + 5, bytes.count)]) == [0x0C, 0x41, 0xD0, 0x0A, 0x03] })
        #expect(bytes.reduce(0, &+) == 0, "the table still checksums")
        // _CRS starts with the bus range it decodes, bus 0 only: WordBusNumber 0-0, length 1.
        #expect(bytes.firstRange(of: [0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]) != nil)
    }

    @Test func noPCIHostNoRootBridge() throws {
        let text = String(decoding: try dsdt([.serial(port: 0x3f8, irq: 4)]), as: UTF8.self)
        #expect(!text.contains("PCI0"))
    }
}
