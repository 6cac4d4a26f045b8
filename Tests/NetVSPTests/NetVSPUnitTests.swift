import Testing
@testable import NetVSP

/// The plugin's pure pieces: the RSS hash, the section pool, the token bucket, the MAC.
@Suite("netvsp parts")
struct NetVSPUnitTests {
    static let key: [UInt8] = [0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
                               0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
                               0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa]

    @Test func toeplitzMatchesMicrosoftsVerificationVectors() {
        // 66.9.149.187:2794 -> 161.142.100.80:1766: IPv4 0x323e8fc2, with TCP ports 0x51ccc178.
        let addresses: [UInt8] = [66, 9, 149, 187, 161, 142, 100, 80]
        #expect(Toeplitz.hash(key: Self.key, input: addresses, count: 8) == 0x323e_8fc2)
        #expect(Toeplitz.hash(key: Self.key, input: addresses + [0x0A, 0xEA, 0x06, 0xE6], count: 12) == 0x51cc_c178)
    }

    @Test func sectionPoolHandsOutEachSectionOnceAndRefusesForgedCompletions() {
        var pool = SectionPool(count: 4)
        let a = pool.take(after: nil, waiter: 0)!, b = pool.take(after: nil, waiter: 0)!
        #expect(pool.link(b, after: a))
        let id = pool.transactionID(head: a)
        #expect(pool.complete(transactionID: id ^ (1 << 32)).freed == 0, "wrong generation")
        #expect(pool.complete(transactionID: UInt64(b)).freed == 0, "a member is not a packet")
        _ = pool.take(after: nil, waiter: 0)
        _ = pool.take(after: nil, waiter: 0)
        #expect(pool.take(after: nil, waiter: 3) == nil && pool.waiters == 1 << 3)
        let done = pool.complete(transactionID: id)
        #expect(done.freed == 2 && done.waiters == 1 << 3 && pool.waiters == 0)
        #expect(pool.complete(transactionID: id).freed == 0, "a repeated completion frees nothing")
        #expect(pool.freeCount == 2)
    }

    @Test func tokenBucketIsDeterministic() {
        var bucket = TokenBucket(bitsPerSecond: 8_000_000)
        #expect(bucket.burstBits == 144_288)
        var passed = 0
        for _ in 0..<100 where bucket.take(bits: 12_000, now: 0) { passed += 1 }
        #expect(passed == 12)
        #expect(!bucket.take(bits: 12_000, now: 1_000_000))  // 8,000 bits earned: not enough
        #expect(bucket.take(bits: 12_000, now: 1_500_000))
    }

    @Test func defaultMACIsStableAndLocal() {
        let a = DefaultMAC.derive(vmName: "web", device: "net0")
        #expect(a == DefaultMAC.derive(vmName: "web", device: "net0"))
        #expect(a != DefaultMAC.derive(vmName: "web", device: "net1") && a != DefaultMAC.derive(vmName: "db", device: "net0"))
        #expect(a.array.prefix(3) == [0x00, 0x15, 0x5D])
    }
}
