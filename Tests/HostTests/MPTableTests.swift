import Testing
@testable import VeneerHost

struct MPTableTests {
    struct Parsed {
        var processors: [[UInt8]] = []
        var buses: [[UInt8]] = []
        var ioapics: [[UInt8]] = []
        var ioInterrupts: [[UInt8]] = []
        var localInterrupts: [[UInt8]] = []
        var order: [UInt8] = []
    }

    /// Parses the base table's entries by their type-defined sizes (20 bytes for processors, 8 for the rest).
    func parse(_ table: [UInt8]) throws -> Parsed {
        var parsed = Parsed()
        var offset = 44
        for _ in 0..<Int(le(table, 34, as: UInt16.self)) {
            let type = table[offset]
            let size = type == 0 ? 20 : 8
            try #require(offset + size <= table.count)
            let entry = Array(table[offset..<offset + size])
            switch type {
            case 0: parsed.processors.append(entry)
            case 1: parsed.buses.append(entry)
            case 2: parsed.ioapics.append(entry)
            case 3: parsed.ioInterrupts.append(entry)
            case 4: parsed.localInterrupts.append(entry)
            default: Issue.record("unknown entry type \(type)")
            }
            parsed.order.append(type)
            offset += size
        }
        #expect(offset == table.count, "the entries fill the base table exactly")
        return parsed
    }

    @Test func floatingPointerIsFoundInTheFSegmentAndChecksums() throws {
        let memory = try GuestMemory(map: try MemoryMap.pc(ramBytes: 4 << 20))
        let firmware = try FirmwareTables(vcpuCount: 4, devices: gen1Devices)
        try firmware.write(into: memory)
        // An OS's search: "_MP_" on a 16-byte boundary in 0xF0000-0xFFFFF, 16 bytes summing to 0.
        let segment = try memory.bytes(0xF0000, count: 0x10000)
        let found = stride(from: 0, to: segment.count, by: 16).first {
            ascii(segment[$0..<$0 + 4]) == "_MP_" && byteSum(segment[$0..<$0 + 16]) == 0
        }
        let offset = try #require(found)
        #expect(0xF0000 + UInt64(offset) == firmware.layout.mpFloatingPointerAddress)
        let pointer = Array(segment[offset..<offset + 16])
        #expect(pointer[8] == 1, "length in 16-byte units")
        #expect(pointer[9] == 4, "MP spec 1.4")
        #expect(pointer[11..<16].allSatisfy { $0 == 0 }, "a configuration table follows; virtual-wire mode")

        let tableAddress = UInt64(le(pointer, 4, as: UInt32.self))
        let length = Int(try memory.readValue(tableAddress + 4, as: UInt16.self))
        let table = try memory.bytes(tableAddress, count: length)
        #expect(ascii(table[0..<4]) == "PCMP")
        #expect(byteSum(table) == 0)
        #expect(table[6] == 4)
        #expect(ascii(table[8..<16]) == "VENEER  " && ascii(table[16..<28]) == "VENEERVM    ")
        #expect(le(table, 36, as: UInt32.self) == 0xFEE0_0000)
        #expect(le(table, 40, as: UInt16.self) == 0, "no extended table")
    }

    @Test(arguments: [1, 2, 8])
    func entriesDescribeProcessorsBusIOAPICAndWiring(vcpus: Int) throws {
        let ioapicID = UInt8(vcpus)
        let table = MPTable.configurationTable(vcpuCount: vcpus, ioapicID: ioapicID, routing: InterruptRouting(sciIRQ: 9))
        #expect(byteSum(table) == 0)
        let parsed = try parse(table)
        #expect(parsed.order == parsed.order.sorted(), "entries ordered by type, as the specification requires")
        #expect(Int(le(table, 34, as: UInt16.self)) == vcpus + 1 + 1 + 16 + 2)

        #expect(parsed.processors.count == vcpus)
        for (i, p) in parsed.processors.enumerated() {
            #expect(p[1] == UInt8(i), "local APIC id")
            #expect(p[2] == 0x14, "KVM's local APIC version")
            #expect(p[3] == (i == 0 ? 0x03 : 0x01), "enabled; the BSP flag only on vCPU 0")
        }
        #expect(parsed.buses == [[1, 0] + Array("ISA   ".utf8)])
        #expect(parsed.ioapics == [[2, ioapicID, 0x11, 0x01, 0x00, 0x00, 0xC0, 0xFE]])

        #expect(parsed.ioInterrupts.count == 16)
        for (irq, e) in parsed.ioInterrupts.enumerated() {
            #expect(e[1] == 0, "INT")
            #expect(e[4] == 0 && e[5] == UInt8(irq), "ISA bus IRQ \(irq)")
            #expect(e[6] == ioapicID)
            #expect(e[7] == UInt8(irq), "KVM routes ISA IRQ \(irq) to pin \(irq), IRQ 0 included")
            #expect(le(e, 2, as: UInt16.self) == (irq == 9 ? 0x000D : 0), "only the SCI is level, active high")
        }
        #expect(parsed.localInterrupts == [
            [4, 3, 0, 0, 0, 0, 0xFF, 0], // ExtINT (the PIC) on LINT0 of every local APIC
            [4, 1, 0, 0, 0, 0, 0xFF, 1], // NMI on LINT1
        ])
    }

    @Test func madtAndMPTableAgreeOnTheWiring() throws {
        for sci in [nil, UInt8(9), UInt8(5)] {
            let routing = InterruptRouting(sciIRQ: sci)
            let madt = MADT.build(vcpuCount: 2, ioapicID: 2, routing: routing)
            let mp = try parse(MPTable.configurationTable(vcpuCount: 2, ioapicID: 2, routing: routing))
            let overrides = madtEntries(madt).filter { $0.type == 2 }.map { Array($0.bytes) }
            for e in mp.ioInterrupts {
                let irq = e[5], pin = e[7], flags = le(e, 2, as: UInt16.self)
                let override = overrides.first { $0[3] == irq }
                let madtPin = override.map { UInt8(le($0, 4, as: UInt32.self)) } ?? irq
                let madtFlags = override.map { le($0, 8, as: UInt16.self) } ?? 0
                #expect(pin == madtPin && flags == madtFlags, "IRQ \(irq) with SCI \(String(describing: sci))")
            }
        }
    }
}
