import Testing
@testable import VeneerHost

struct ACPITableTests {
    func devices(_ list: [ACPIDevice] = gen1Devices) throws -> ACPIDeviceSet { try ACPIDeviceSet(list) }

    @Test func rsdpHasBothChecksumsAndPointsAtTheXSDT() {
        let rsdp = RSDP.build(xsdtAddress: 0x1234_5678_9ABC)
        #expect(rsdp.count == 36)
        #expect(ascii(rsdp[0..<8]) == "RSD PTR ")
        #expect(byteSum(rsdp[0..<20]) == 0, "ACPI 1.0 checksum over the first 20 bytes")
        #expect(byteSum(rsdp) == 0, "extended checksum over all 36 bytes")
        #expect(ascii(rsdp[9..<15]) == "VENEER")
        #expect(rsdp[15] == 2, "revision 2: ACPI 2.0 and later")
        #expect(le(rsdp, 16, as: UInt32.self) == 0, "no RSDT")
        #expect(le(rsdp, 20, as: UInt32.self) == 36)
        #expect(le(rsdp, 24, as: UInt64.self) == 0x1234_5678_9ABC)
    }

    @Test func xsdtListsEntries() {
        let xsdt = SDT(bytes: XSDT.build(entries: [0xE1000, 0x1_0000_0000]))
        xsdt.expectWellFormed("XSDT", revision: 1)
        #expect(xsdt.length == 36 + 16)
        #expect(le(xsdt.bytes, 36, as: UInt64.self) == 0xE1000)
        #expect(le(xsdt.bytes, 44, as: UInt64.self) == 0x1_0000_0000)
    }

    @Test func facsIsSixtyFourBytesVersionTwo() {
        let facs = FACS.build()
        #expect(facs.count == 64)
        #expect(ascii(facs[0..<4]) == "FACS")
        #expect(le(facs, 4, as: UInt32.self) == 64)
        #expect(facs[32] == 2)
        #expect(facs[8..<32].allSatisfy { $0 == 0 }, "no lock held, no waking vector, no flags")
    }

    @Test func fadtDeclaresWhatTheACPIPMPluginImplements() throws {
        let fadt = SDT(bytes: FADT.build(facsAddress: 0xE0000, dsdtAddress: 0xE1000, devices: try devices()))
        fadt.expectWellFormed("FACP", revision: 6)
        let b = fadt.bytes
        #expect(b.count == 276)
        #expect(b[131] == 5, "FADT minor version: ACPI 6.5")
        #expect(le(b, 36, as: UInt32.self) == 0, "FIRMWARE_CTRL: only X_FIRMWARE_CTRL points at the FACS")
        #expect(le(b, 40, as: UInt32.self) == 0xE1000, "DSDT")
        #expect(le(b, 132, as: UInt64.self) == 0xE0000, "X_FIRMWARE_CTRL")
        #expect(le(b, 140, as: UInt64.self) == 0xE1000, "X_DSDT")
        #expect(le(b, 46, as: UInt16.self) == 9, "SCI_INT")
        #expect(le(b, 48, as: UInt32.self) == 0xB2, "SMI_CMD")
        #expect(b[52] == 0xF0 && b[53] == 0xF1, "ACPI_ENABLE / ACPI_DISABLE")
        #expect(b[54] == 0 && b[55] == 0, "S4BIOS_REQ, PSTATE_CNT")
        #expect(le(b, 56, as: UInt32.self) == 0x600, "PM1a_EVT_BLK")
        #expect(le(b, 60, as: UInt32.self) == 0, "PM1b_EVT_BLK")
        #expect(le(b, 64, as: UInt32.self) == 0x604, "PM1a_CNT_BLK")
        #expect(le(b, 68, as: UInt32.self) == 0 && le(b, 72, as: UInt32.self) == 0, "PM1b_CNT_BLK, PM2_CNT_BLK")
        #expect(le(b, 76, as: UInt32.self) == 0x608, "PM_TMR_BLK")
        #expect(le(b, 80, as: UInt32.self) == 0x620, "GPE0_BLK")
        #expect(le(b, 84, as: UInt32.self) == 0, "GPE1_BLK")
        #expect(Array(b[88..<96]) == [4, 2, 0, 4, 4, 0, 0, 0], "PM1_EVT_LEN .. CST_CNT")
        #expect(le(b, 96, as: UInt16.self) > 100 && le(b, 98, as: UInt16.self) > 1000, "no C2, no C3")
        #expect(b[108] == 0x32, "CENTURY: the cmos-rtc plugin's century byte")
        #expect(le(b, 109, as: UInt16.self) == 0b0111, "IAPC_BOOT_ARCH: LEGACY_DEVICES, 8042, VGA not present")
        let flags = le(b, 112, as: UInt32.self)
        #expect(flags & 1 != 0, "WBINVD")
        #expect(flags & (1 << 4) == 0, "PWR_BUTTON clear: acpi-pm has the fixed power button")
        #expect(flags & (1 << 5) != 0, "SLP_BUTTON set: no sleep button")
        #expect(flags & (1 << 6) != 0, "FIX_RTC")
        #expect(flags & (1 << 8) == 0, "TMR_VAL_EXT clear: the PM timer is 24-bit")
        #expect(flags & (1 << 10) != 0, "RESET_REG_SUP")
        #expect(flags & (1 << 20) == 0, "not hardware-reduced")
        #expect(Array(b[116..<128]) == hexBytes("01 08 00 01 64 00 00 00 00 00 00 00"), "RESET_REG: port 0x64, 8 bits")
        #expect(b[128] == 0xFE, "RESET_VALUE")
        // X_ blocks: system I/O, bit width = length * 8, matching the 32-bit fields.
        #expect(Array(b[148..<160]) == hexBytes("01 20 00 02 00 06 00 00 00 00 00 00"), "X_PM1a_EVT_BLK")
        #expect(Array(b[160..<172]).allSatisfy { $0 == 0 }, "X_PM1b_EVT_BLK")
        #expect(Array(b[172..<184]) == hexBytes("01 10 00 02 04 06 00 00 00 00 00 00"), "X_PM1a_CNT_BLK")
        #expect(Array(b[184..<208]).allSatisfy { $0 == 0 }, "X_PM1b_CNT_BLK, X_PM2_CNT_BLK")
        #expect(Array(b[208..<220]) == hexBytes("01 20 00 03 08 06 00 00 00 00 00 00"), "X_PM_TMR_BLK")
        #expect(Array(b[220..<232]) == hexBytes("01 20 00 01 20 06 00 00 00 00 00 00"), "X_GPE0_BLK")
        #expect(Array(b[232..<276]).allSatisfy { $0 == 0 }, "X_GPE1_BLK, sleep registers, hypervisor id")
    }

    @Test func fadtFollowsTheDeviceList() throws {
        let custom = PowerManagementBlocks(pm1aEvent: 0xB000, pm1aControl: 0xB004, timer: 0xB008, gpe0: 0xAFE0,
                                           smiCommand: nil, sciIRQ: 11, s5SleepType: 0)
        let b = FADT.build(facsAddress: 0xE0000, dsdtAddress: 0xE1000, devices: try devices([.powerManagement(custom)]))
        #expect(byteSum(b) == 0)
        #expect(le(b, 46, as: UInt16.self) == 11)
        #expect(le(b, 48, as: UInt32.self) == 0 && b[52] == 0 && b[53] == 0, "no SMI port: ACPI mode from power-on")
        #expect(le(b, 56, as: UInt32.self) == 0xB000 && le(b, 64, as: UInt32.self) == 0xB004)
        #expect(le(b, 76, as: UInt32.self) == 0xB008 && le(b, 80, as: UInt32.self) == 0xAFE0)
        #expect(le(b, 152, as: UInt64.self) == 0xB000 && le(b, 224, as: UInt64.self) == 0xAFE0)
        #expect(b[108] == 0, "no RTC, no century")
        #expect(le(b, 109, as: UInt16.self) == 0b10_0100, "VGA and CMOS RTC not present, no legacy devices")
        #expect(le(b, 112, as: UInt32.self) & (1 << 10) == 0, "no i8042, no reset register")
        #expect(Array(b[116..<129]).allSatisfy { $0 == 0 })
    }

    @Test func fadtWithoutPowerManagementIsHardwareReduced() throws {
        let b = FADT.build(facsAddress: 0xE0000, dsdtAddress: 0xE1000, devices: try devices([.serial(port: 0x3F8, irq: 4)]))
        #expect(byteSum(b) == 0)
        let flags = le(b, 112, as: UInt32.self)
        #expect(flags & (1 << 20) != 0, "HW_REDUCED_ACPI")
        #expect(flags & (1 << 4) != 0, "no fixed power button")
        #expect(le(b, 46, as: UInt16.self) == 0)
        #expect(Array(b[56..<93]).allSatisfy { $0 == 0 }, "no fixed-hardware blocks")
        #expect(Array(b[148..<232]).allSatisfy { $0 == 0 })
    }

    @Test func fadtAboveFourGiBUsesOnlyTheExtendedPointers() throws {
        let b = FADT.build(facsAddress: 0x1_0000_0000, dsdtAddress: 0x2_0000_0000, devices: try devices())
        #expect(le(b, 36, as: UInt32.self) == 0 && le(b, 40, as: UInt32.self) == 0)
        #expect(le(b, 132, as: UInt64.self) == 0x1_0000_0000 && le(b, 140, as: UInt64.self) == 0x2_0000_0000)
    }

    @Test(arguments: [1, 2, 8])
    func madtHasOneEnabledLocalAPICPerVCPU(vcpus: Int) throws {
        let routing = InterruptRouting(sciIRQ: 9)
        let madt = SDT(bytes: MADT.build(vcpuCount: vcpus, ioapicID: UInt8(vcpus), routing: routing))
        madt.expectWellFormed("APIC", revision: 6)
        #expect(le(madt.bytes, 36, as: UInt32.self) == 0xFEE0_0000)
        #expect(le(madt.bytes, 40, as: UInt32.self) == 1, "PCAT_COMPAT: the 8259s are there")
        let entries = madtEntries(madt.bytes)
        #expect(entries.map(\.bytes.count).reduce(44, +) == madt.length, "entries fill the table exactly")
        let lapics = entries.filter { $0.type == 0 }
        #expect(lapics.count == vcpus)
        for (i, e) in lapics.enumerated() {
            let b = Array(e.bytes)
            #expect(b.count == 8)
            #expect(b[2] == UInt8(i) && b[3] == UInt8(i), "processor UID and APIC id")
            #expect(le(b, 4, as: UInt32.self) == 1, "enabled")
        }
        let ioapics = entries.filter { $0.type == 1 }.map { Array($0.bytes) }
        #expect(ioapics.count == 1)
        #expect(ioapics.first == [1, 12, UInt8(vcpus), 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0], "id n at 0xFEC00000, GSI base 0")
        let overrides = entries.filter { $0.type == 2 }.map { Array($0.bytes) }
        #expect(overrides == [hexBytes("02 0A 00 09 09 00 00 00 0D 00")], "only the SCI: IRQ 9 -> GSI 9, level, active high")
        let nmis = entries.filter { $0.type == 4 }.map { Array($0.bytes) }
        #expect(nmis == [hexBytes("04 06 FF 00 00 01")], "LINT1 of every processor is NMI")
    }

    @Test func madtWithoutSCIHasNoOverrides() {
        let madt = MADT.build(vcpuCount: 1, ioapicID: 1, routing: InterruptRouting(sciIRQ: nil))
        #expect(madtEntries(madt).filter { $0.type == 2 }.isEmpty, "KVM routes every ISA IRQ to the same-numbered pin")
    }

    @Test func sciAboveFifteenStillGetsItsOverride() {
        let routing = InterruptRouting(sciIRQ: 20)
        #expect(routing.overrides == [.init(source: 20, gsi: 20, flags: .levelActiveHigh)])
        #expect((0..<16).allSatisfy { routing.flags(forISAIRQ: UInt8($0)) == .conforming })
    }

    @Test func interruptRoutingIsIdentityLikeKVMsDefaultRouting() {
        let routing = InterruptRouting(sciIRQ: 9)
        for irq in UInt8(0)..<16 { #expect(routing.ioapicPin(forISAIRQ: irq) == irq) }
        #expect(routing.ioapicPin(forISAIRQ: 0) == 0, "the PIT's IRQ 0 reaches pin 0, not pin 2")
    }
}
