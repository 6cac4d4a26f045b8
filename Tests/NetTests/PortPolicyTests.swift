import Synchronization
import Testing
@testable import VeneerNet

// The per-frame policy netvsp applies and the parsing that guards `veneer switch`.

final class ManualClock: MonotonicClock {
    let now = Atomic<UInt64>(1_000_000)
    func nanoseconds() -> UInt64 { now.load(ordering: .relaxed) }
    func advance(_ ns: UInt64) { now.add(ns, ordering: .relaxed) }
}

@Suite struct PortPolicyTests {
    let mac = MACAddress(0x00, 0x15, 0x5d, 0x01, 0x02, 0x03)

    func frame(source: MACAddress) -> [UInt8] {
        [UInt8](repeating: 0xff, count: 6) + source.array + [0x08, 0x06] + [UInt8](repeating: 0, count: 28)
    }

    @Test func sourceMACCheck() {
        let strict = SourceMACCheck(mac: mac, allowSpoofing: false)
        #expect(strict.permits(frame: frame(source: mac)))
        #expect(!strict.permits(frame: frame(source: MACAddress(0x00, 0x15, 0x5d, 0x01, 0x02, 0x04))))
        #expect(!strict.permits(frame: Array(frame(source: mac).prefix(11))))  // no whole source MAC
        let open = SourceMACCheck(PortSpec(switchName: "s", interfaceName: "t", mac: mac, allowMACSpoofing: true))
        #expect(open.permits(frame: frame(source: MACAddress(0x02, 0, 0, 0, 0, 1))))
        #expect(!open.permits(frame: [1, 2, 3]))
    }

    @Test func tokenBucketHoldsTheRate() {
        let clock = ManualClock()
        // 1 Mbit/s, 10 ms burst = 10,000 bits, raised to one full frame (12,112 bits).
        var bucket = TokenBucket(bitsPerSecond: 1_000_000, clock: clock)
        #expect(bucket.burstBits == 1514 * 8)
        #expect(bucket.admit(bytes: 1514) == true)      // the whole burst
        let drainedWait = bucket.nanosecondsUntilAdmit()
        #expect(drainedWait == 0)  // exactly drained, not in debt
        #expect(bucket.admit(bytes: 64) == true)        // at zero a frame still passes, into debt
        #expect(bucket.admit(bytes: 64) == false)       // in debt: nothing passes
        let wait = bucket.nanosecondsUntilAdmit()
        #expect(wait == 512_001)                // 512 bits of debt at 1 bit/us, rounded up
        clock.advance(wait)
        #expect(bucket.admit(bytes: 64) == true)

        // Over one simulated second of 1514-byte offers every 100 us, what passes is the rate
        // plus at most the burst and one frame of debt.
        var passedBits: UInt64 = 0
        for _ in 0..<10_000 {
            clock.advance(100_000)
            if bucket.admit(bytes: 1514) { passedBits += 1514 * 8 }
        }
        #expect(passedBits <= 1_000_000 + 2 * 1514 * 8 && passedBits >= 1_000_000 - 2 * 1514 * 8)
    }

    @Test func tokenBucketSurvivesLongIdleAndHugeRates() {
        let clock = ManualClock()
        var bucket = TokenBucket(bitsPerSecond: 100_000_000_000, burstBits: 1_000_000, clock: clock)
        clock.advance(UInt64.max / 4)           // elapsed * rate overflows 64 bits: the bucket is just full
        #expect(bucket.admit(bytes: 65_536) == true)
        var slow = TokenBucket(bitsPerSecond: 0, clock: clock)  // treated as 1 bit/s, never a division by zero
        #expect(slow.admit(bytes: 1514) == true)
        #expect(slow.admit(bytes: 1) == true)
        #expect(slow.admit(bytes: 1) == false)
    }

    @Test func derivedMACIsStableUnicastHyperV() {
        let a = MACAddress.derived(vmName: "web1", nicIndex: 0)
        #expect(a == MACAddress.derived(vmName: "web1", nicIndex: 0))
        #expect(Array(a.array.prefix(3)) == [0x00, 0x15, 0x5d])
        #expect(a.array[0] & 1 == 0)
        #expect(a != MACAddress.derived(vmName: "web1", nicIndex: 1))
        #expect(a != MACAddress.derived(vmName: "web2", nicIndex: 0))
        #expect(MACAddress.derived(vmName: "vm1", nicIndex: 10) != MACAddress.derived(vmName: "vm11", nicIndex: 0))
        // 500 VMs x 2 NICs in 24 bits (a birthday collision is about 3% likely for any hash; this one has none).
        var seen = Set<MACAddress>()
        for vm in 0..<500 { for nic in 0..<2 { seen.insert(.derived(vmName: "vm-\(vm)", nicIndex: nic)) } }
        #expect(seen.count == 1000)
    }

    @Test func interfaceNames() {
        #expect(throws: Never.self) { try InterfaceName.validate("vsw-lan_1.2", role: "switch") }
        #expect(throws: Never.self) { try InterfaceName.validate("abcdefghijklmno", role: "switch") }
        for bad in ["", "abcdefghijklmnop", "a b", "a/b", "a:b", ".", "..", "naïve", "x\n"] {
            #expect(throws: NetworkError.self, "\(bad)") { try InterfaceName.validate(bad, role: "switch") }
        }
        #expect(throws: NetworkError("switch name 'abcdefghijklmnop' is 16 bytes; Linux interface names are at most 15")) {
            try InterfaceName.validate("abcdefghijklmnop", role: "switch")
        }
    }

    @Test func cidrParsing() throws {
        let v4 = try IPNetwork(cidr: "10.1.2.3/24")
        #expect(v4.family == .ipv4 && v4.address == [10, 1, 2, 3] && v4.prefixLength == 24 && v4.broadcast == [10, 1, 2, 255])
        #expect(v4.description == "10.1.2.3/24")
        #expect(try IPNetwork(cidr: "192.168.0.1/32").broadcast == nil)
        let v6 = try IPNetwork(cidr: "fd00::1/64")
        #expect(v6.family == .ipv6 && v6.address.count == 16 && v6.address[0] == 0xfd && v6.address[15] == 1 && v6.description == "fd00::1/64")
        for bad in ["10.0.0.1", "10.0.0.1/33", "10.0.0/24", "10.0.0.256/24", "1.2.3.4.5/8", "fd00::g/64", "fd00::1/129", "/24", "x/y"] {
            #expect(throws: NetworkError.self, "\(bad)") { try IPNetwork(cidr: bad) }
        }
    }

    @Test func switchMarkerRoundTrip() {
        let external = SwitchMarker(type: .external, uplink: "eth0")
        #expect(external.alias == "veneer-switch type=external uplink=eth0")
        #expect(SwitchMarker(alias: external.alias) == external)
        #expect(SwitchMarker(alias: "veneer-switch type=private") == SwitchMarker(type: .private))
        #expect(SwitchMarker(alias: "my bridge") == nil)
        #expect(SwitchMarker(alias: "veneer-switch type=bogus") == nil)
        #expect(SwitchMarker(alias: "veneer-switch") == nil)
    }

    @Test func capabilityParsing() {
        #expect(NetworkCapabilities.parseEffective(status: "Name:\tx\nCapInh:\t0\nCapEff:\t000001fffeffffff\n") == 0x1fffeffffff)
        #expect(NetworkCapabilities.parseEffective(status: "CapEff:\t0000000000000000\n") == 0)
        #expect(NetworkCapabilities.parseEffective(status: "Name:\tx\n") == nil)
    }

    @Test func virtioNetHeaderLayout() throws {
        let header = VirtioNetHeader(flags: 1, gsoType: 4, headerLength: 0x0102, segmentSize: 1448, checksumStart: 54, checksumOffset: 16, bufferCount: 1)
        let bytes = header.encoded
        #expect(bytes.count == VirtioNetHeader.size)
        #expect(bytes == [1, 4, 0x02, 0x01, 0xa8, 0x05, 54, 0, 16, 0, 1, 0])
        #expect(VirtioNetHeader(decoding: bytes) == header)
        #expect(VirtioNetHeader(decoding: bytes.prefix(11)) == nil)
        #expect(header.needsChecksum && !VirtioNetHeader.plain.needsChecksum)
    }
}
