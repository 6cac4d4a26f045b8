import Foundation
import Testing
@testable import VeneerHost

struct ACPIDSDTTests {
    func dsdt(vcpus: Int = 1, _ devices: [ACPIDevice]) throws -> SDT {
        SDT(bytes: try DSDT.build(vcpuCount: vcpus, devices: try ACPIDeviceSet(devices)))
    }

    /// Device (COM1) as the ACPI grammar spells it, byte by byte.
    @Test func serialPortDevice() throws {
        let table = try dsdt([.serial(port: 0x3F8, irq: 4)])
        table.expectWellFormed("DSDT", revision: 2)
        let com1 = hexBytes("""
            5B 82 2B 43 4F 4D 31
            08 5F 48 49 44 0C 41 D0 05 01
            08 5F 55 49 44 01
            08 5F 43 52 53 11 10 0A 0D 47 01 F8 03 F8 03 01 08 22 10 00 79 00
            """)
        // The end tag's checksum: whatever makes the 13-byte template sum to zero.
        var expected = com1
        expected[expected.count - 1] = 0 &- byteSum(expected[(expected.count - 13)...])
        #expect(table.bytes.firstRange(of: expected) != nil)
    }

    @Test func isaDevicesCarryTheirResources() throws {
        let table = try dsdt(gen1Devices)
        func contains(_ hex: String) -> Bool { table.bytes.firstRange(of: hexBytes(hex)) != nil }
        #expect(contains("5F 48 49 44 0C 41 D0 0B 00"), "RTC PNP0B00")
        #expect(contains("47 01 70 00 70 00 01 02 22 00 01"), "RTC ports 0x70-0x71, IRQ 8")
        #expect(contains("5F 48 49 44 0C 41 D0 01 00"), "PIT PNP0100")
        #expect(contains("47 01 40 00 40 00 01 04 22 01 00"), "PIT ports 0x40-0x43, IRQ 0")
        #expect(contains("5F 48 49 44 0C 41 D0 03 03"), "keyboard PNP0303")
        #expect(contains("47 01 60 00 60 00 01 01 47 01 64 00 64 00 01 01 22 02 00"), "keyboard 0x60, 0x64, IRQ 1")
        #expect(contains("5F 48 49 44 0C 41 D0 0F 13"), "mouse PNP0F13")
        #expect(contains("08 5F 43 52 53 11 08 0A 05 22 00 10"), "mouse IRQ 12")
        #expect(contains("08 5C 5F 53 35 5F 12 08 04 0A 05 0A 05 00 00"), "\\_S5 = {5, 5, 0, 0}")
        #expect(!contains("56 4D 42 53"), "no VMBus for an unenlightened VM")
    }

    @Test func s5FollowsThePlugin() throws {
        let table = try dsdt([.powerManagement(PowerManagementBlocks(s5SleepType: 7))])
        #expect(table.bytes.firstRange(of: hexBytes("08 5C 5F 53 35 5F 12 08 04 0A 07 0A 07 00 00")) != nil)
        let zero = try dsdt([.powerManagement(PowerManagementBlocks(s5SleepType: 0))])
        #expect(zero.bytes.firstRange(of: hexBytes("08 5C 5F 53 35 5F 12 06 04 00 00 00 00")) != nil)
        #expect(try dsdt([]).bytes.firstRange(of: Array("_S5_".utf8)) == nil, "no S5 without the hardware to enter it")
    }

    @Test func vmbusDeviceHasItsEmptyCRS() throws {
        let table = try dsdt([.vmbus])
        #expect(table.bytes.firstRange(of: hexBytes("""
            5B 82 2C 56 4D 42 53 08 5F 48 49 44 0D 56 4D 42 75 73 00 08 5F 55 49 44 00
            14 09 5F 53 54 41 00 A4 0A 0F 08 5F 43 52 53 11 05 0A 02 79 87
            """)) != nil)
    }

    @Test func processorDevicesMatchTheMADTUIDs() throws {
        let table = try dsdt(vcpus: 3, [])
        // Name + Name (_HID, "ACPI0007") + Name (_UID, n): 26 bytes with Zero/One, 27 with BytePrefix.
        for (cpu, length) in [(0, UInt8(0x1A)), (1, 0x1A), (2, 0x1B)] {
            let expected = [0x5B, 0x82, length, 0x43, 0x50, 0x30, 0x30 + UInt8(cpu)]
                + hexBytes("08 5F 48 49 44 0D 41 43 50 49 30 30 30 37 00 08 5F 55 49 44")
                + (try AMLData.integer(UInt64(cpu)).encoded())
            #expect(table.bytes.firstRange(of: expected) != nil, "CP0\(cpu)")
        }
        #expect(DSDT.processorName(0xFE) == "CPFE")
        #expect(DSDT.processorName(0x0A) == "CP0A")
    }

    @Test func linesAboveFifteenUseAnInterruptDescriptor() throws {
        let table = try dsdt([.serial(port: 0x2F8, irq: 19)])
        #expect(table.bytes.firstRange(of: hexBytes("47 01 F8 02 F8 02 01 08 89 06 00 03 01 13 00 00 00 79")) != nil)
    }

    @Test func systemBusTermsLandInSB() throws {
        let table = try dsdt([.systemBusTerms([.device("PCI0", [.name("_HID", .eisaID("PNP0A03"))])])])
        #expect(table.bytes.firstRange(of: hexBytes("5B 82 0F 50 43 49 30 08 5F 48 49 44 0C 41 D0 0A 03")) != nil)
    }

    /// The Generation 1 DSDT as committed in Tests/Golden/acpi, which `iasl -d` disassembled without
    /// errors and whose re-assembly matched byte for byte apart from iasl's own header fields and
    /// end-tag checksums. scripts/acpi-golden regenerates and re-checks it: with VENEER_ACPI_DUMP
    /// set, this test also writes every table of that VM there for iasl to read.
    @Test func generationOneDSDTMatchesTheGoldenFile() throws {
        let firmware = try FirmwareTables(vcpuCount: 2, devices: gen1Devices + [.vmbus])
        let dsdtRegion = try #require(firmware.regions.first { $0.start == FirmwarePlacement.pcBIOSArea.tables.lowerBound })
        let dsdt = try #require(firmware.layout.table("DSDT"))
        let table = Array(dsdtRegion.bytes[Int(dsdt.address - dsdtRegion.start)...].prefix(dsdt.size))
        if let directory = ProcessInfo.processInfo.environment["VENEER_ACPI_DUMP"] {
            for t in firmware.layout.tables {
                let region = try #require(firmware.regions.first { $0.start <= t.address && t.address < $0.start + UInt64($0.bytes.count) })
                let bytes = Array(region.bytes[Int(t.address - region.start)...].prefix(t.size))
                let name = t.signature.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " ", with: "-")
                try Data(bytes).write(to: URL(fileURLWithPath: directory).appendingPathComponent("gen1-\(name.lowercased()).aml"))
            }
        }
        let golden = try Data(contentsOf: goldenDirectory.appendingPathComponent("gen1-dsdt.aml"))
        #expect(table == [UInt8](golden))
    }
}
