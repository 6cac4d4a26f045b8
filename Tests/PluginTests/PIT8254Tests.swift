import Testing
import VeneerHarness
import VeneerHost

// The 8254 through its real .so, checked against the Intel 8254 datasheet. Ports, command bytes
// and status bits are spelled as numbers on purpose: they come from the datasheet, not the plugin.
//
// Control word: SC1 SC0 RW1 RW0 M2 M1 M0 BCD. RW 00 latch, 01 LSB, 10 MSB, 11 LSB then MSB.
// Read-back: 1 1 !COUNT !STATUS CNT2 CNT1 CNT0 0. Status: OUT, NULL COUNT, RW1 RW0, M2 M1 M0, BCD.
private let controlPort: UInt16 = 0x43
private let portB: UInt16 = 0x61
private let pitHz: UInt64 = 1_193_182
private let second: UInt64 = 1_000_000_000

private func makePIT(_ parameters: [String: ParameterValidation.Input] = [:]) throws -> PluginHarness {
    try PluginHarness(plugin: "pit8254", parameters: parameters)
}

extension PluginHarness {
    /// CLK edges since host time 0: the datasheet's 1.193182 MHz applied to the manual clock.
    fileprivate var tick: UInt64 {
        let p = host.now.multipliedFullWidth(by: pitHz)
        return second.dividingFullWidth((p.high, p.low)).quotient
    }

    /// Moves the clock to the instant of the `ticks`-th CLK edge from now.
    fileprivate func advance(ticks: UInt64) {
        let target = tick + ticks
        let p = target.multipliedFullWidth(by: second)
        let (q, r) = pitHz.dividingFullWidth((p.high, p.low))
        advance(nanoseconds: (r == 0 ? q : q + 1) - host.now)
    }

    fileprivate func command(_ value: UInt8) { write(port: controlPort, UInt64(value)) }

    fileprivate func writeCount(_ counter: UInt16, _ count: UInt16) {
        write(port: 0x40 + counter, UInt64(count & 0xFF))
        write(port: 0x40 + counter, UInt64(count >> 8))
    }

    fileprivate func byte(_ port: UInt16) -> UInt8 { UInt8(truncatingIfNeeded: read(port: port)) }

    /// LSB then MSB, for counters programmed with RW = 11.
    fileprivate func readCount(_ counter: UInt16) -> UInt16 {
        let low = UInt16(byte(0x40 + counter))
        return UInt16(byte(0x40 + counter)) << 8 | low
    }

    /// Read-back with !STATUS = 0 for one counter, then the status byte.
    fileprivate func status(_ counter: UInt16) -> UInt8 {
        command(0xE0 | UInt8(2 << counter))
        return byte(0x40 + counter)
    }

    fileprivate var out2: Bool { byte(portB) & 0x20 != 0 }
    fileprivate func setGate2(_ high: Bool) { write(port: portB, high ? 1 : 0) }

    fileprivate func rises(on line: UInt32 = 0) -> [UInt64] {
        host.irqEvents.filter { $0.line == line && $0.level }.map(\.time)
    }
}

@Suite("pit8254")
struct PIT8254Tests {
    @Test("claims ports 0x40-0x43 and 0x61; port, irq and speaker_port move or drop them")
    func ports() throws {
        #expect(try makePIT().host.regions.map { [$0.base, $0.length] } == [[0x40, 4], [0x61, 1]])
        let moved = try makePIT(["port": .int(0x48), "speaker_port": .int(0)])
        #expect(moved.host.regions.map { [$0.base, $0.length] } == [[0x48, 4]])
        let error = #expect(throws: (any Error).self) { try makePIT(["speaker_port": .int(0x42)]) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("speaker_port 0x42"))
        #expect(throws: (any Error).self) { try makePIT(["port": .int(0xfffd)]) }
        #expect(throws: (any Error).self) { try makePIT(["irq": .int(24)]) }
    }

    @Test("mode 2 at divisor 11932 raises IRQ 0 about 100 times a second, each an edge", arguments: [UInt8(0x34), 0x36])
    func periodicInterrupts(controlWord: UInt8) throws {
        let pit = try makePIT()
        pit.command(controlWord) // counter 0, LSB then MSB, mode 2 (0x34) or mode 3 (0x36)
        let written = pit.tick
        pit.writeCount(0, 11932)
        pit.advance(nanoseconds: second)
        let events = pit.host.irqEvents
        #expect((99...101).contains(events.count / 2))
        #expect(events.allSatisfy { $0.line == 0 })
        #expect(events.map(\.level) == Array(repeating: [true, false], count: events.count / 2).flatMap { $0 })
        // OUT rises each time the count reloads: N ticks apart, the first N after the load edge.
        let rises = pit.rises()
        let first = written + 1 + 11932
        for (i, time) in rises.enumerated() {
            let p = (first + UInt64(i) * 11932).multipliedFullWidth(by: second)
            let (q, r) = pitHz.dividingFullWidth((p.high, p.low))
            #expect(time == (r == 0 ? q : q + 1), "edge \(i)")
        }
    }

    @Test("irq parameter: counter 0 drives the configured line")
    func otherLine() throws {
        let pit = try makePIT(["irq": .int(2)])
        pit.command(0x34)
        pit.writeCount(0, 1193)
        pit.advance(nanoseconds: 10_000_000)
        #expect(pit.rises(on: 2).count == 10) // edges at 1 + 1193 m ticks <= 11931
        #expect(pit.rises(on: 0).isEmpty)
    }

    @Test("a host that was late gets one edge, then edges resume on the period grid")
    func lateHostDoesNotFlood() throws {
        let pit = try makePIT()
        pit.command(0x34)
        let load = pit.tick + 1
        pit.writeCount(0, 1193)
        pit.advance(nanoseconds: 5_000_000)
        #expect(pit.rises().count == 4)
        pit.advanceLate(nanoseconds: second)
        #expect(pit.rises().count == 5)
        pit.host.clearIRQEvents()
        pit.advance(nanoseconds: 10_000_000)
        let rises = pit.rises()
        #expect((9...10).contains(rises.count))
        for time in rises {
            let p = time.multipliedFullWidth(by: pitHz)
            let edgeTick = second.dividingFullWidth((p.high, p.low)).quotient
            #expect((edgeTick - load) % 1193 == 0)
        }
    }

    @Test("tiny periods are paced at one edge per 200 µs, and the count still reads exactly")
    func tinyPeriodsArePaced() throws {
        let pit = try makePIT()
        pit.command(0x34)
        pit.writeCount(0, 2)
        pit.advance(nanoseconds: 10_000_000)
        #expect((49...51).contains(pit.rises().count))
        pit.command(0x00)
        let a = pit.readCount(0)
        pit.advance(ticks: 1)
        pit.command(0x00)
        #expect(a != pit.readCount(0))
    }

    @Test("mode 0: OUT and IRQ 0 rise once, N+1 ticks after the count is written; the count wraps on")
    func mode0OneShot() throws {
        let pit = try makePIT()
        pit.command(0x30)
        #expect(pit.status(0) == 0x70) // OUT low, NULL COUNT, RW 11, mode 0
        pit.writeCount(0, 1000)
        pit.advance(ticks: 1000) // the load edge, then 999 decrements
        #expect(pit.readCount(0) == 1)
        #expect(pit.rises().isEmpty)
        #expect(pit.status(0) == 0x30)
        pit.advance(ticks: 1)
        #expect(pit.rises().count == 1)
        #expect(pit.status(0) == 0xB0)
        #expect(pit.readCount(0) == 0)
        pit.advance(ticks: 1)
        #expect(pit.readCount(0) == 0xFFFF)
        pit.advance(nanoseconds: second)
        #expect(pit.rises().count == 1)
        #expect(pit.host.irqLevels[0] == false)

        // A new count drops OUT at the first byte and fires once more, N+1 ticks after the second.
        pit.write(port: 0x40, 0xF4)
        #expect(pit.status(0) & 0x80 == 0)
        pit.write(port: 0x40, 0x01) // 500
        pit.advance(ticks: 500)
        #expect(pit.rises().count == 1)
        pit.advance(ticks: 1)
        #expect(pit.rises().count == 2)
    }

    @Test("mode 0: writing the first byte of a two-byte count stops counting")
    func mode0FirstByteStops() throws {
        let pit = try makePIT()
        pit.command(0x70) // counter 1, mode 0
        pit.writeCount(1, 1000)
        pit.advance(ticks: 101)
        pit.write(port: 0x41, 0x10)
        pit.advance(ticks: 50)
        #expect(pit.readCount(1) == 900)
        pit.write(port: 0x41, 0x00) // count 0x0010
        pit.advance(ticks: 1)
        #expect(pit.readCount(1) == 16)
    }

    @Test("mode 4 on counter 0: a one-tick strobe N+1 ticks after the write, its end an IRQ 0 edge")
    func mode4Strobe() throws {
        let pit = try makePIT()
        pit.command(0x38)
        #expect(pit.status(0) & 0x80 != 0)
        pit.writeCount(0, 10)
        pit.advance(ticks: 11)
        #expect(pit.status(0) & 0x80 == 0)
        #expect(pit.rises().isEmpty)
        pit.advance(ticks: 1)
        #expect(pit.status(0) & 0x80 != 0)
        #expect(pit.rises().count == 1)
        pit.advance(nanoseconds: second)
        #expect(pit.rises().count == 1)
    }

    @Test("counter latch freezes the count until both bytes are read; a second latch is ignored")
    func counterLatch() throws {
        let pit = try makePIT()
        pit.command(0x74) // counter 1, mode 2
        pit.writeCount(1, 50000)
        pit.advance(ticks: 101)
        pit.command(0x40)
        pit.advance(ticks: 1000)
        pit.command(0x40)
        let low = pit.byte(0x41)
        pit.advance(ticks: 300)
        let high = pit.byte(0x41)
        #expect(UInt16(high) << 8 | UInt16(low) == 49900)
        #expect(pit.readCount(1) == 49900 - 1300)
        // LSB-only access releases the latch after one byte.
        pit.command(0x50) // counter 1, LSB only, mode 0
        pit.write(port: 0x41, 0x80)
        pit.advance(ticks: 1)
        pit.command(0x40)
        pit.advance(ticks: 5)
        #expect(pit.byte(0x41) == 0x80)
        #expect(pit.byte(0x41) == 0x7B)
    }

    @Test("read-back: status byte with OUTPUT, NULL COUNT, RW, mode and BCD, then the count")
    func readBack() throws {
        let pit = try makePIT()
        pit.command(0x77) // counter 1, LSB then MSB, mode 3, BCD
        #expect(pit.status(1) == 0xF7)
        pit.writeCount(1, 0x1000)
        #expect(pit.status(1) == 0xF7) // NULL COUNT until the CLK edge that loads the CE
        pit.advance(ticks: 1)
        #expect(pit.status(1) == 0xB7)
        pit.advance(ticks: 10)
        pit.command(0xC4) // latch count and status of counter 1
        pit.advance(ticks: 100)
        #expect(pit.byte(0x41) == 0xB7)
        #expect(pit.readCount(1) == 0x0980) // mode 3 counts down by two

        // One command latches several counters; a latched status survives reprogramming checks.
        pit.command(0x30)
        pit.writeCount(0, 5)
        pit.command(0xB4) // counter 2, mode 2
        pit.writeCount(2, 300)
        pit.advance(ticks: 3)
        pit.command(0xCE) // count and status of counters 0, 1 and 2
        pit.advance(ticks: 50)
        #expect(pit.byte(0x40) == 0x30)
        #expect(pit.readCount(0) == 3)
        #expect(pit.byte(0x41) == 0xB7)
        #expect(pit.readCount(1) == 0x0774) // 113 ticks after the load: 1000 - 2 * 113
        #expect(pit.byte(0x42) == 0xB4)
        #expect(pit.readCount(2) == 300) // gate 2 is low: loaded, not counting
        // A status latch is held while unread: the second read-back does not replace it.
        pit.command(0xE2)
        pit.advance(ticks: 10)
        pit.command(0xE2)
        #expect(pit.byte(0x40) == 0xB0)
        #expect(pit.readCount(0) == 0x10000 - 57) // 5 - 62 decrements, wrapped
    }

    @Test("mode bits 110 and 111 are modes 2 and 3 and read back as written")
    func modeAliases() throws {
        let pit = try makePIT()
        pit.command(0x7C) // counter 1, mode 110
        pit.writeCount(1, 10)
        pit.advance(ticks: 10)
        #expect(pit.status(1) == 0x3C) // OUT low for the tick the count is 1
        pit.advance(ticks: 1)
        #expect(pit.status(1) == 0xBC)
        #expect(pit.readCount(1) == 10)
    }

    @Test("LSB-only and MSB-only counts, and the independent read and write flip-flops")
    func byteSequencing() throws {
        let pit = try makePIT()
        pit.command(0x54) // counter 1, LSB only, mode 2
        pit.write(port: 0x41, 0x34)
        pit.advance(ticks: 1)
        #expect(pit.byte(0x41) == 0x34)
        #expect(pit.byte(0x41) == 0x34)
        pit.advance(ticks: 2)
        #expect(pit.byte(0x41) == 0x32)

        pit.command(0x64) // counter 1, MSB only, mode 2
        pit.write(port: 0x41, 0x12)
        pit.advance(ticks: 1)
        #expect(pit.byte(0x41) == 0x12)
        pit.advance(ticks: 0x101)
        #expect(pit.byte(0x41) == 0x10)

        // The datasheet's interleaving: read LSB, write LSB, read MSB, write MSB.
        pit.command(0x74)
        pit.writeCount(1, 0x2000)
        pit.advance(ticks: 1)
        #expect(pit.byte(0x41) == 0x00)
        pit.write(port: 0x41, 0x34)
        #expect(pit.byte(0x41) == 0x20)
        pit.write(port: 0x41, 0x12)
        // Mode 2 finishes the current period before loading 0x1234.
        pit.advance(ticks: 0x2000 - 1)
        #expect(pit.readCount(1) == 1)
        #expect(pit.status(1) & 0x40 != 0)
        pit.advance(ticks: 1)
        #expect(pit.readCount(1) == 0x1234)
        #expect(pit.status(1) & 0x40 == 0)
    }

    @Test("BCD counting: decimal digits, and count 0 means 10000")
    func bcd() throws {
        let pit = try makePIT()
        pit.command(0x75) // counter 1, mode 2, BCD
        pit.writeCount(1, 0x1000)
        pit.advance(ticks: 1)
        #expect(pit.readCount(1) == 0x1000)
        pit.advance(ticks: 1)
        #expect(pit.readCount(1) == 0x0999)
        pit.advance(ticks: 995)
        #expect(pit.readCount(1) == 0x0004)
        pit.advance(ticks: 4)
        #expect(pit.readCount(1) == 0x1000)

        pit.command(0x71) // counter 1, mode 0, BCD
        pit.writeCount(1, 0)
        pit.advance(ticks: 1)
        #expect(pit.readCount(1) == 0x0000)
        pit.advance(ticks: 1)
        #expect(pit.readCount(1) == 0x9999)
        pit.advance(ticks: 9998)
        #expect(pit.readCount(1) == 0x0001)
        #expect(pit.status(1) & 0x80 == 0)
        pit.advance(ticks: 1)
        #expect(pit.status(1) & 0x80 != 0)
    }

    @Test("port 0x61: gate 2, speaker bits, OUT2 and the refresh toggle")
    func systemControlPortB() throws {
        let pit = try makePIT()
        #expect(pit.byte(portB) & 0xCF == 0)
        pit.write(port: portB, 0xFE)
        #expect(pit.byte(portB) & 0xCF == 0x0E) // bits 0-3 read back; 6 and 7 (errors) stay clear
        pit.write(port: portB, 0x00)

        // The refresh bit flips every 18 ticks (15 µs).
        let refresh = pit.byte(portB) & 0x10
        pit.advance(ticks: 18)
        #expect(pit.byte(portB) & 0x10 != refresh)
        pit.advance(ticks: 18)
        #expect(pit.byte(portB) & 0x10 == refresh)

        // Mode 0 on counter 2 with the gate low: loaded but held.
        pit.command(0xB0)
        pit.writeCount(2, 100)
        pit.advance(ticks: 500)
        #expect(pit.readCount(2) == 100)
        #expect(!pit.out2)
        pit.setGate2(true)
        pit.advance(ticks: 40)
        pit.setGate2(false) // pauses mode 0
        pit.advance(ticks: 1000)
        #expect(pit.readCount(2) == 60)
        pit.setGate2(true)
        pit.advance(ticks: 59)
        #expect(!pit.out2)
        pit.advance(ticks: 1)
        #expect(pit.out2)
        #expect(pit.byte(portB) & 0x21 == 0x21)
        #expect(pit.host.irqEvents.isEmpty) // counter 2 has no interrupt
    }

    @Test("mode 3 on counter 2: a square wave on OUT2; a low gate forces it high and the rise reloads")
    func speakerSquareWave() throws {
        let pit = try makePIT()
        pit.setGate2(true)
        pit.command(0xB6) // counter 2, mode 3
        pit.writeCount(2, 4)
        var wave: [Bool] = []
        var counts: [UInt16] = []
        for _ in 0..<8 {
            pit.advance(ticks: 1)
            wave.append(pit.out2)
            counts.append(pit.readCount(2))
        }
        #expect(wave == [true, true, false, false, true, true, false, false])
        #expect(counts == [4, 2, 4, 2, 4, 2, 4, 2])
        pit.advance(ticks: 3) // the low half again
        #expect(!pit.out2)
        pit.setGate2(false)
        #expect(pit.out2)
        pit.setGate2(true)
        pit.advance(ticks: 1)
        #expect(pit.out2)
        #expect(pit.readCount(2) == 4)

        // Odd N: high for (N+1)/2 ticks, low for (N-1)/2.
        pit.command(0xB6)
        pit.writeCount(2, 5)
        wave = []
        for _ in 0..<10 {
            pit.advance(ticks: 1)
            wave.append(pit.out2)
        }
        #expect(wave == [true, true, true, false, false, true, true, true, false, false])
    }

    @Test("mode 3 takes a new count at the end of the current half-cycle")
    func mode3Rewrite() throws {
        let pit = try makePIT()
        pit.setGate2(true)
        pit.command(0xB6)
        pit.writeCount(2, 100)
        pit.advance(ticks: 11)
        #expect(pit.readCount(2) == 80)
        pit.writeCount(2, 20)
        pit.advance(ticks: 39)
        #expect(pit.readCount(2) == 2)
        #expect(pit.out2)
        pit.advance(ticks: 1)
        #expect(!pit.out2)
        #expect(pit.readCount(2) == 20)
        pit.advance(ticks: 9)
        #expect(!pit.out2)
        pit.advance(ticks: 1)
        #expect(pit.out2)
        #expect(pit.readCount(2) == 20)
    }

    @Test("mode 2: a low gate forces OUT high at once and holds the count; the rising gate reloads")
    func mode2Gate() throws {
        let pit = try makePIT()
        pit.setGate2(true)
        pit.command(0xB4)
        pit.writeCount(2, 10)
        pit.advance(ticks: 10)
        #expect(!pit.out2)
        #expect(pit.readCount(2) == 1)
        pit.setGate2(false)
        #expect(pit.out2)
        pit.advance(ticks: 100)
        #expect(pit.readCount(2) == 1)
        pit.setGate2(true)
        pit.advance(ticks: 1)
        #expect(pit.readCount(2) == 10)
        pit.advance(ticks: 9)
        #expect(!pit.out2)
    }

    @Test("mode 1: the gate's rising edge starts an N-tick low pulse; a retrigger restarts it")
    func mode1Retrigger() throws {
        let pit = try makePIT()
        pit.command(0xB2) // counter 2, mode 1
        #expect(pit.out2)
        pit.writeCount(2, 100)
        pit.advance(ticks: 10)
        #expect(pit.out2) // no trigger yet
        pit.setGate2(true)
        #expect(pit.out2) // low from the next CLK edge
        pit.advance(ticks: 1)
        #expect(!pit.out2)
        #expect(pit.readCount(2) == 100)
        pit.advance(ticks: 50)
        #expect(pit.readCount(2) == 50)
        pit.setGate2(false)
        pit.setGate2(true)
        pit.advance(ticks: 1)
        #expect(!pit.out2)
        #expect(pit.readCount(2) == 100)
        pit.advance(ticks: 99)
        #expect(!pit.out2)
        pit.advance(ticks: 1)
        #expect(pit.out2)
        pit.advance(ticks: 1000)
        #expect(pit.out2)
        #expect(pit.readCount(2) == UInt16(0x10000 - 1000))
        // A new count waits for the next trigger.
        pit.writeCount(2, 20)
        #expect(pit.status(2) & 0xC0 == 0xC0) // OUT high, NULL COUNT
        pit.setGate2(false)
        pit.setGate2(true)
        pit.advance(ticks: 20)
        #expect(!pit.out2)
        #expect(pit.status(2) & 0x40 == 0)
        pit.advance(ticks: 1)
        #expect(pit.out2)
    }

    @Test("mode 5: the gate's rising edge arms a strobe N+1 ticks later; a retrigger restarts it")
    func mode5Retrigger() throws {
        let pit = try makePIT()
        pit.command(0xBA) // counter 2, mode 5
        pit.writeCount(2, 30)
        pit.advance(ticks: 100)
        #expect(pit.out2)
        pit.setGate2(true)
        pit.advance(ticks: 20)
        pit.setGate2(false)
        pit.setGate2(true)
        pit.advance(ticks: 30)
        #expect(pit.out2)
        pit.advance(ticks: 1)
        #expect(!pit.out2)
        pit.advance(ticks: 1)
        #expect(pit.out2)
        pit.advance(ticks: 100_000)
        #expect(pit.out2)
    }

    @Test("save mid-count, load into an instance whose clock reads differently: it continues alike")
    func saveLoadMidCount() throws {
        let a = try makePIT()
        a.command(0x34)
        a.writeCount(0, 11932)
        a.command(0x74)
        a.writeCount(1, 40000)
        a.setGate2(true)
        a.write(port: portB, 0x03)
        a.command(0xB6)
        a.writeCount(2, 1000)
        a.advance(ticks: 600_001)
        a.command(0x40)
        _ = a.byte(0x41) // the latched LSB: the read flip-flop is mid-sequence
        a.writeCount(2, 3000) // a mode 3 reload pending at the half-cycle's end
        let saved = try a.save()

        let b = try makePIT()
        b.advance(ticks: 7_654_321)
        try b.load(saved)
        #expect(try b.save() == saved)
        #expect(b.byte(0x41) == a.byte(0x41))
        a.host.clearIRQEvents()
        b.host.clearIRQEvents()
        let aStart = a.host.now, bStart = b.host.now
        for step in [1, 499, 5000, 123_456, 600_000] as [UInt64] {
            a.advance(ticks: step)
            b.advance(ticks: step)
            for counter in [0, 1, 2] as [UInt16] {
                #expect(a.status(counter) == b.status(counter), "status \(counter) after \(step)")
                #expect(a.readCount(counter) == b.readCount(counter), "counter \(counter) after \(step)")
            }
            #expect(a.byte(portB) & 0x2F == b.byte(portB) & 0x2F)
        }
        // Edge for edge on the same ticks (nanoseconds may round differently on the two clocks).
        func ticks(_ h: PluginHarness, _ times: [UInt64]) -> [UInt64] {
            times.map { time in
                let p = time.multipliedFullWidth(by: pitHz)
                return second.dividingFullWidth((p.high, p.low)).quotient
            }
        }
        let aEdges = ticks(a, a.rises()).map { $0 - ticks(a, [aStart])[0] }
        #expect(aEdges.count == 61)
        #expect(aEdges == ticks(b, b.rises()).map { $0 - ticks(b, [bStart])[0] })
    }

    @Test("malformed state is rejected and leaves the device unchanged")
    func malformedState() throws {
        let pit = try makePIT()
        pit.command(0x34)
        pit.writeCount(0, 11932)
        pit.advance(ticks: 5000)
        let good = try pit.save()
        #expect(good.count == 2 + 3 * 56)
        pit.command(0x70)
        let before = try pit.save()

        // Layout v1: port B, owed edge, then per counter (56 bytes, counter 0 at 2): mode bits +0,
        // RW +1, BCD +2, CR +3, ..., load offset +26, N +34, paused +39, reload +48.
        func patched(_ offset: Int, _ bytes: [UInt8]) -> [UInt8] {
            var copy = good
            copy.replaceSubrange(offset..<offset + bytes.count, with: bytes)
            return copy
        }
        var bad: [[UInt8]] = (0..<good.count).map { Array(good.prefix($0)) }
        bad.append(good + [0])
        bad.append(patched(0, [0x10])) // port B read-only bit
        bad.append(patched(1, [2])) // not a boolean
        bad.append(patched(2, [8])) // mode bits
        bad.append(patched(3, [0])) // RW 00 is the latch command, never a mode
        bad.append(patched(2 + 26, [0, 0, 0, 0, 0, 0, 0, 0x80])) // load tick far in the past
        bad.append(patched(2 + 34, [0, 0, 0, 0])) // N = 0
        bad.append(patched(2 + 39, [1])) // paused with gate 0 tied high
        bad.append(patched(2 + 56 + 48, [5, 0, 0, 0, 0, 0, 0, 0])) // a reload on idle counter 1
        for blob in bad {
            #expect(throws: (any Error).self, "\(blob.count) bytes") { try pit.load(blob) }
        }
        #expect(throws: (any Error).self) { try pit.load(good, version: 2) }
        #expect(try pit.save() == before)
        try pit.load(good)
        #expect(try pit.save() == good)
    }

    @Test("reset returns to the power-on state, silences IRQ 0 and is idempotent")
    func resetIsIdempotent() throws {
        let fresh = try makePIT().save()
        let pit = try makePIT()
        pit.command(0x34)
        pit.writeCount(0, 100)
        pit.write(port: portB, 0x0F)
        pit.command(0xC2)
        pit.advance(nanoseconds: 1_000_000)
        try pit.reset()
        #expect(try pit.save() == fresh)
        #expect(pit.host.armedTimers.isEmpty)
        pit.host.clearIRQEvents()
        try pit.reset()
        #expect(try pit.save() == fresh)
        pit.advance(nanoseconds: second)
        #expect(pit.host.irqEvents.isEmpty)
    }

    @Test("passes the conformance suite")
    func conformance() {
        let report = ConformanceSuite(plugin: "pit8254").run()
        #expect(report.allPassed, "\(report.checks.map(\.line))")
    }
}
