import ICProtocol
import Testing
import VeneerIC

// KVP wire layouts with the numbers written out from Linux include/uapi/linux/hyperv.h
// (hv_kvp_hdr, hv_kvp_exchg_msg_value, hv_kvp_msg_enumerate, hv_kvp_msg_delete, hv_kvp_ip_msg),
// not from the encoder.

private func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * $1) } }
private func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }
private func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }

@Suite struct KVPLayoutTests {
    @Test func sizesMatchLinux() {
        #expect(KVPExchangeValue.size == 2572 && KVPExchangeValue.keyCapacity == 512 && KVPExchangeValue.valueCapacity == 2048)
        #expect(KVPMessage.size(of: .get) == 2576 && KVPMessage.size(of: .set) == 2576)
        #expect(KVPMessage.size(of: .delete) == 520 && KVPMessage.size(of: .enumerate) == 2580)
        #expect(KVPMessage.size(of: .getIPInfo) == 0x1D04 && KVPIPInfoMessage.size == 7428)
        #expect(KVPMessage.size(of: KVPOperation(rawValue: 6)) == nil)
    }

    @Test func numbers() {
        #expect([KVPOperation.get, .set, .delete, .enumerate, .getIPInfo, .setIPInfo].map(\.rawValue) == [0, 1, 2, 3, 4, 5])
        #expect([KVPPool.external, .guest, .auto, .autoExternal, .autoInternal].map(\.rawValue) == [0, 1, 2, 3, 4])
        #expect(KVPValueType.string.rawValue == 1 && KVPValueType.u32.rawValue == 4)
        #expect(KVPValueType.linuxU64.rawValue == 8 && KVPValueType.windowsU64.rawValue == 11, "Linux REG_U64 vs Windows REG_QWORD")
        #expect(ICStatus.noMoreItems == 0x8007_0103 && ICStatus.notSupported == 0x8007_0032 && ICStatus.machineLocked == 0x8007_04F7)
        #expect(ICStatus.deviceNotConnected == 0x8007_048F && ICStatus.invalidArgument == 0x8007_0057)
        #expect(ICStatus.guidNotFound == 0x8004_1002 && ICStatus.alreadyExists == 0x8007_0050)
    }

    @Test func aSetSitsAtLinuxOffsets() throws {
        let value = try #require(KVPExchangeValue(key: "Ab", string: "xyz"))
        let b = KVPMessage(pool: .autoExternal, body: .set(value)).encode()
        #expect(b.count == 2576)
        #expect(b[0] == 1 && b[1] == 3 && b[2] == 0 && b[3] == 0)        // operation, pool, pad
        #expect(u32(b, 4) == 1)                                          // value_type REG_SZ
        #expect(u32(b, 8) == 6)                                          // key_size: 2 units + NUL, bytes
        #expect(u32(b, 12) == 8)                                         // value_size
        #expect(u16(b, 16) == 0x41 && u16(b, 18) == 0x62 && u16(b, 20) == 0)   // key at 16
        #expect(u16(b, 528) == 0x78 && u16(b, 532) == 0x7a && u16(b, 534) == 0) // value at 16 + 512
        #expect(try KVPMessage.decode(b[...]) == KVPMessage(pool: .autoExternal, body: .set(value)))
    }

    @Test func numbersSitInTheValueField() throws {
        let v32 = try #require(KVPExchangeValue(key: Array("n".utf16), value: .u32(0xdead_beef)))
        let a = v32.encode()
        #expect(u32(a, 0) == 4 && u32(a, 8) == 4 && u32(a, 524) == 0xdead_beef)
        for type in [KVPValueType.linuxU64, .windowsU64] {
            let v64 = try #require(KVPExchangeValue(key: Array("n".utf16), value: .u64(0x0102_0304_0506_0708, type: type)))
            let b = v64.encode()
            #expect(u32(b, 0) == type.rawValue && u32(b, 8) == 8 && u64(b, 524) == 0x0102_0304_0506_0708)
            #expect(try KVPExchangeValue.decode(b[...]) == v64)
            #expect(v64.valueText == "72623859790382856")
        }
        #expect(KVPExchangeValue(key: Array("n".utf16), value: .u64(1, type: .u32)) == nil)
    }

    @Test func enumerateAndDeleteOffsets() throws {
        let e = KVPMessage(pool: .auto, body: .enumerate(index: 0x0102_0304, try #require(KVPExchangeValue(key: "", string: "")))).encode()
        #expect(e.count == 2580 && e[0] == 3 && e[1] == 2 && u32(e, 4) == 0x0102_0304 && u32(e, 8) == 1)
        let d = KVPMessage(pool: .external, body: .delete(key: Array("key".utf16))).encode()
        #expect(d.count == 520 && d[0] == 2 && u32(d, 4) == 8 && u16(d, 8) == 0x6b && u16(d, 14) == 0)
        #expect(try KVPMessage.decode(d[...]) == KVPMessage(pool: .external, body: .delete(key: Array("key".utf16))))
    }

    @Test func limitsAreEnforcedBothWays() throws {
        #expect(KVPExchangeValue(key: String(repeating: "k", count: 255), string: "") != nil)
        #expect(KVPExchangeValue(key: String(repeating: "k", count: 256), string: "") == nil)
        #expect(KVPExchangeValue(key: "k", string: String(repeating: "v", count: 1023)) != nil)
        #expect(KVPExchangeValue(key: "k", string: String(repeating: "v", count: 1024)) == nil)
        var b = KVPMessage(pool: .guest, body: .get(try #require(KVPExchangeValue(key: "k", string: "v")))).encode()
        b[8] = 0x02; b[9] = 0x02   // key_size 514: more than the key field
        #expect(throws: ICWireError.invalidField(structure: "KVP value", field: "key_size", value: 514)) { try KVPMessage.decode(b[...]) }
        b[8] = 3; b[9] = 0         // odd
        #expect(throws: ICWireError.invalidField(structure: "KVP value", field: "key_size", value: 3)) { try KVPMessage.decode(b[...]) }
        #expect(throws: ICWireError.self) { try KVPMessage.decode(b.prefix(2575)) }
        #expect(throws: ICWireError.invalidField(structure: "KVP message", field: "operation", value: 4)) { try KVPMessage.decode([4, 0, 0, 0][...]) }
        // A full-size string without its NUL is cut to what fits with one.
        var full = KVPMessage(pool: .guest, body: .get(try #require(KVPExchangeValue(key: "k", string: "")))).encode()
        for i in 0..<1024 { full[528 + 2 * i] = 0x41 }
        full[12] = 0x00; full[13] = 0x08   // value_size 2048
        guard case .get(let value) = try KVPMessage.decode(full[...]).body, case .string(let units) = value.value else { Issue.record("not a GET"); return }
        #expect(units.count == 1023)
    }

    @Test func ipInfoOffsets() throws {
        let m = try #require(KVPIPInfoMessage(operation: .getIPInfo, adapterID: Array("AA:BB".utf16), addressFamily: 3, dhcpEnabled: true,
                                              addresses: Array("10.0.0.5".utf16), subnets: Array("255.0.0.0".utf16),
                                              gateways: Array("10.0.0.1".utf16), dnsServers: Array("10.0.0.2".utf16)))
        let b = m.encode()
        #expect(b.count == 7428 && b[0] == 4 && b[1] == 0)
        #expect(u16(b, 2) == 0x41 && b[258] == 3 && b[259] == 1)
        #expect(u16(b, 260) == 0x31 && u16(b, 2308) == 0x32 && u16(b, 4356) == 0x31 && u16(b, 5380) == 0x31)
        #expect(try KVPIPInfoMessage.decode(b[...]) == m)
        #expect(KVPIPInfoMessage(operation: .set, adapterID: []) == nil)
        #expect(KVPIPInfoMessage(operation: .setIPInfo, adapterID: Array(repeating: 0x41, count: 128)) == nil)
    }
}

@Suite struct KVPPoolsTests {
    @Test func getSetDeleteListKeepOrderAndReplaceInPlace() throws {
        var pools = KVPPools()
        #expect(try pools.set(.external, "b", "1") && (try pools.set(.external, "a", "2")))
        #expect(try pools.set(.external, "b", "3"))
        #expect(try !pools.set(.external, "b", "3"), "no change")
        #expect(pools.list(.external) == [KVPPools.Pair(key: "b", value: "3"), KVPPools.Pair(key: "a", value: "2")])
        #expect(pools.get(.external, "a") == "2" && pools.get(.external, "A") == nil && pools.get(.guest, "a") == nil)
        try pools.delete(.external, "b")
        #expect(throws: KVPPools.Failure.noSuchKey(.external, "b")) { try pools.delete(.external, "b") }
        #expect(pools.nonEmptyPools == [.external])
        pools.clear(.external)
        #expect(pools.nonEmptyPools.isEmpty)
    }

    @Test func limits() throws {
        var pools = KVPPools()
        #expect(throws: KVPPools.Failure.emptyKey) { try pools.set(.external, "", "v") }
        #expect(throws: KVPPools.Failure.keyTooLong(units: 256)) { try pools.set(.external, String(repeating: "k", count: 256), "v") }
        #expect(throws: KVPPools.Failure.valueTooLong(key: "k", units: 1024)) { try pools.set(.external, "k", String(repeating: "v", count: 1024)) }
        #expect(throws: KVPPools.Failure.containsNUL("KVP key 'a\u{0}b'")) { try pools.set(.external, "a\u{0}b", "v") }
        try pools.set(.external, "😀", String(repeating: "é", count: 1023))   // UTF-16 units count, not bytes
        for i in 1..<KVPPools.maximumPairs { try pools.set(.guest, "k\(i)", "") }
        try pools.set(.guest, "last", "")
        #expect(throws: KVPPools.Failure.poolFull(.guest)) { try pools.set(.guest, "one too many", "") }
        #expect("\(KVPPools.Failure.poolFull(.guest))" == "the guest pool already holds 1024 pairs")
    }
}
