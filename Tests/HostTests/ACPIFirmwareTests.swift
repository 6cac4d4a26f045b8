import Foundation
import Testing
@testable import VeneerHost

/// The whole set of tables, placed and written into guest memory, read back the way an OS does.
struct ACPIFirmwareTests {
    let memory: GuestMemory

    init() throws { memory = try GuestMemory(map: try MemoryMap.pc(ramBytes: 4 << 20)) }

    /// An OS's RSDP search: "RSD PTR " on a 16-byte boundary in 0xE0000-0xFFFFF with a valid checksum.
    func searchRSDP() throws -> UInt64? {
        let area = try memory.bytes(0xE0000, count: 0x20000)
        for offset in stride(from: 0, to: area.count - 36, by: 16)
            where ascii(area[offset..<offset + 8]) == "RSD PTR " && byteSum(area[offset..<offset + 20]) == 0 {
            return 0xE0000 + UInt64(offset)
        }
        return nil
    }

    @Test func osWalksRSDPToXSDTToFADTToDSDT() throws {
        let firmware = try FirmwareTables(vcpuCount: 2, devices: gen1Devices + [.vmbus])
        try firmware.write(into: memory)

        let rsdpAddress = try #require(try searchRSDP())
        #expect(rsdpAddress == firmware.layout.rsdpAddress)
        #expect(rsdpAddress % 16 == 0)
        let rsdp = try memory.bytes(rsdpAddress, count: 36)
        #expect(byteSum(rsdp) == 0)

        let xsdt = try memory.sdt(at: le(rsdp, 24, as: UInt64.self))
        xsdt.expectWellFormed("XSDT", revision: 1)
        let entries = stride(from: 36, to: xsdt.length, by: 8).map { le(xsdt.bytes, $0, as: UInt64.self) }
        let tables = try entries.map { try memory.sdt(at: $0) }
        #expect(tables.map(\.signature) == ["FACP", "APIC"])

        let fadt = tables[0]
        fadt.expectWellFormed("FACP", revision: 6)
        let dsdtAddress = le(fadt.bytes, 140, as: UInt64.self)
        #expect(UInt64(le(fadt.bytes, 40, as: UInt32.self)) == dsdtAddress, "DSDT and X_DSDT agree")
        let dsdt = try memory.sdt(at: dsdtAddress)
        dsdt.expectWellFormed("DSDT", revision: 2)
        #expect(ascii(dsdt.bytes[28..<32]) == "VNER")

        let facsAddress = le(fadt.bytes, 132, as: UInt64.self)
        // One pointer: with both set, Linux warns that the firmware gives two FACS addresses.
        #expect(le(fadt.bytes, 36, as: UInt32.self) == 0, "FIRMWARE_CTRL must be 0 when X_FIRMWARE_CTRL is used")
        #expect(facsAddress % 64 == 0, "the FACS must be 64-byte aligned")
        #expect(ascii(try memory.bytes(facsAddress, count: 64)[0..<4]) == "FACS")

        tables[1].expectWellFormed("APIC", revision: 6)
        #expect(madtEntries(tables[1].bytes).filter { $0.type == 0 }.count == 2)
    }

    @Test func defaultPlacementFillsTheBIOSArea() throws {
        let firmware = try FirmwareTables(vcpuCount: 1, devices: gen1Devices)
        let layout = firmware.layout
        #expect(layout.memoryRanges == [
            .init(start: 0xE0000, size: 0x1000, kind: .acpiNVS),
            .init(start: 0xE1000, size: 0xF000, kind: .acpiReclaimable),
            .init(start: 0xF0000, size: 0x10000, kind: .reserved),
        ])
        #expect(layout.memoryRanges.map(\.kind.rawValue) == [4, 3, 2], "e820 type numbers")
        #expect(layout.rsdpAddress == 0xF0000)
        #expect(layout.mpFloatingPointerAddress == 0xF0030)
        #expect(layout.table("FACS")?.address == 0xE0000)
        #expect(layout.table("DSDT")?.address == 0xE1000)
        #expect(layout.table("PCMP")?.address == 0xF0040)
        #expect(layout.ioapicID == 1)
        for table in layout.tables {
            #expect(table.address % 16 == 0, "\(table.signature) is 16-byte aligned")
            let range = try #require(layout.memoryRanges.first { $0.start <= table.address && table.address < $0.start + $0.size })
            #expect(table.address + UInt64(table.size) <= range.start + range.size, "\(table.signature) stays in its region")
        }
        #expect(firmware.regions.map(\.start) == [0xE0000, 0xE1000, 0xF0000])
        #expect(firmware.regions.map(\.bytes.count) == [0x1000, 0xF000, 0x10000])
    }

    @Test func tablesStayClearOfTheBootStructures() throws {
        let layout = try FirmwareTables(vcpuCount: 64, devices: gen1Devices + [.vmbus]).layout
        // GDT 0x500-0x5FF, flat page tables 0x9000-0xEFFF, zero page 0x7000, command line 0x20000.
        let bootRanges: [Range<UInt64>] = [0x500..<0x600, 0x7000..<0x8000, 0x9000..<0xF000, 0x20000..<0x21000]
        for range in layout.memoryRanges {
            let used = range.start..<range.start + range.size
            #expect(bootRanges.allSatisfy { !$0.overlaps(used) })
            #expect(FirmwarePlacement.rsdpSearchArea.contains(range.start))
        }
    }

    @Test func writingReplacesStaleContents() throws {
        try memory.load(Array("RSD PTR ".utf8) + Array(repeating: 0xAB, count: 0x100), at: 0xE8000)
        try memory.load(Array(repeating: 0xCD, count: 0x100), at: 0xFFF00)
        try FirmwareTables(vcpuCount: 1, devices: []).write(into: memory)
        #expect(try memory.bytes(0xE8000, count: 0x108).allSatisfy { $0 == 0 })
        #expect(try memory.bytes(0xFFF00, count: 0x100).allSatisfy { $0 == 0 })
        #expect(try searchRSDP() == 0xF0000)
    }

    @Test(arguments: [1, 2, 8, 64, 254])
    func everyTableChecksumsForAnyVCPUCount(vcpus: Int) throws {
        let firmware = try FirmwareTables(vcpuCount: vcpus, devices: gen1Devices + [.vmbus])
        try firmware.write(into: memory)
        for table in firmware.layout.tables {
            let bytes = try memory.bytes(table.address, count: table.size)
            switch table.signature {
            case "FACS": #expect(bytes.count == 64)
            case "RSD PTR ": #expect(byteSum(bytes[0..<20]) == 0 && byteSum(bytes) == 0)
            case "_MP_", "PCMP": #expect(byteSum(bytes) == 0, "\(table.signature)")
            default:
                #expect(byteSum(bytes) == 0, "\(table.signature) checksum")
                #expect(Int(le(bytes, 4, as: UInt32.self)) == bytes.count)
            }
        }
        let madt = try #require(firmware.layout.table("APIC"))
        let madtBytes = try memory.bytes(madt.address, count: madt.size)
        #expect(madtEntries(madtBytes).filter { $0.type == 0 }.count == vcpus)
        #expect(firmware.layout.ioapicID == UInt8(vcpus))
    }

    @Test func refusesImpossibleInputs() {
        #expect(throws: FirmwareError.invalidVCPUCount(0)) { try FirmwareTables(vcpuCount: 0, devices: []) }
        #expect(throws: FirmwareError.invalidVCPUCount(255)) { try FirmwareTables(vcpuCount: 255, devices: []) }
        #expect(throws: FirmwareError.self) { try FirmwareTables(vcpuCount: 1, devices: [.rtc(irq: 8), .rtc(irq: 8)]) }
        #expect(throws: FirmwareError.self) { try FirmwareTables(vcpuCount: 1, devices: [.vmbus, .vmbus]) }
        #expect(throws: FirmwareError.self) { try FirmwareTables(vcpuCount: 1, devices: [.serial(port: 0x3F8, irq: 24)]) }
        #expect(throws: FirmwareError.self) { try FirmwareTables(vcpuCount: 1, devices: [.serial(port: 0xFFFA, irq: 4)]) }
        #expect(throws: FirmwareError.self) {
            try FirmwareTables(vcpuCount: 1, devices: Array(repeating: .serial(port: 0x3F8, irq: 4), count: 10))
        }
        #expect(throws: FirmwareError.self) {
            try FirmwareTables(vcpuCount: 1, devices: [.powerManagement(PowerManagementBlocks(s5SleepType: 8))])
        }
        #expect(throws: FirmwareError.aml(.invalidName("bad", reason: "segment \"bad\" must be A-Z or _ then A-Z, 0-9 or _"))) {
            try FirmwareTables(vcpuCount: 1, devices: [.systemBusTerms([.name("bad", .integer(0))])])
        }
    }

    @Test func refusesPlacementsOSesCannotUse() {
        let base = FirmwarePlacement.pcBIOSArea
        var unaligned = base
        unaligned.nvs = 0xE0040..<0xE1000
        var overlapping = base
        overlapping.tables = 0xE0000..<0xF0000
        var unsearched = base
        unsearched.pointers = 0x10_0000..<0x10_1000
        var noMPArea = base
        noMPArea.pointers = 0xE8000..<0xE9000
        noMPArea.tables = 0xE1000..<0xE8000
        for placement in [unaligned, overlapping, unsearched, noMPArea] {
            #expect(throws: FirmwareError.self) { try FirmwareTables(vcpuCount: 1, devices: gen1Devices, placement: placement) }
        }
    }

    @Test func tablesThatOutgrowTheirRegionAreRefused() {
        var small = FirmwarePlacement.pcBIOSArea
        small.tables = 0xE1000..<0xE2000
        #expect(throws: FirmwareError.self) {
            // 254 processor devices alone need more than one page of AML.
            try FirmwareTables(vcpuCount: 254, devices: gen1Devices, placement: small)
        }
    }

    @Test func placementOutsideGuestRAMWritesNothing() throws {
        var high = FirmwarePlacement.pcBIOSArea
        high.tables = 0x3F_F000..<0x40_1000 // crosses the end of 4 MiB of RAM
        let firmware = try FirmwareTables(vcpuCount: 1, devices: gen1Devices, placement: high)
        #expect(throws: FirmwareError.self) { try firmware.write(into: memory) }
        #expect(try memory.bytes(0xE0000, count: 64).allSatisfy { $0 == 0 }, "the FACS region was not written either")
    }
}
