import Foundation
import ICProtocol
import Testing
import VeneerIC

// Seeded fuzz of the IC framing decoders a host runs on guest answers: ICFrame, the negotiate,
// heartbeat, time-sync (both layouts), shutdown, KVP (exchange and IP info), VSS and file-copy
// bodies, and the negotiation check. Inputs are
// valid messages mutated (bit flips, byte stores, truncation, extension, hostile counts and
// sizes) or plain random bytes. After each input: no crash; a decoded frame re-encodes to exactly the input; a decoded negotiate body is
// within its limits and re-encodes to the bytes it came from; the negotiation check accepts only
// counts 1/1 with offered versions; every error describes itself in one line.
//
// VENEER_FUZZ_STEPS sets the number of inputs (default 20000), VENEER_FUZZ_SEED the seed.

/// SplitMix64: the whole state is the seed, so a seed names one exact run.
private struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
}

private struct FramingFuzzer {
    var random: SplitMix64
    let offered = NegotiateMessage(frameworkVersions: ICFrameworkVersion.offered, messageVersions: [ICVersion(1, 0), ICVersion(3, 0)])

    mutating func version() -> ICVersion {
        switch random.below(4) {
        case 0: ICVersion(1, 0)
        case 1: ICVersion(3, 0)
        case 2: ICVersion(UInt16(random.below(5)), UInt16(random.below(3)))
        default: ICVersion(UInt16(truncatingIfNeeded: random.next()), UInt16(truncatingIfNeeded: random.next()))
        }
    }

    /// A plausible message: a negotiate request or answer, a heartbeat, or another type.
    mutating func seed() -> [UInt8] {
        let types = [ICMessageType.negotiate, .heartbeat, .shutdown, .timeSync, .kvpExchange, .vss, .fileCopy,
                     ICMessageType(rawValue: UInt16(random.below(0x10000)))]
        let type = types[random.below(types.count)]
        let body: [UInt8]
        switch type {
        case .negotiate:
            body = NegotiateMessage(frameworkVersions: (0..<random.below(4)).map { _ in version() },
                                    messageVersions: (0..<random.below(4)).map { _ in version() }).encode()
        case .heartbeat:
            body = HeartbeatMessage(sequenceNumber: random.next(), applicationState: UInt32(random.below(5))).encode()
        case .timeSync:
            body = TimeSyncMessage(parentTime: random.next(), referenceTime: random.below(2) == 0 ? nil : random.next(),
                                   flags: TimeSyncFlags(rawValue: UInt8(random.below(4))), leapFlags: UInt8(random.below(3)),
                                   stratum: UInt8(random.below(16))).encode()
        case .shutdown where random.below(2) == 0:
            let units = (0..<random.below(40)).map { _ in UInt16(truncatingIfNeeded: random.next()) | 1 }
            body = ShutdownMessage(reasonCode: UInt32(truncatingIfNeeded: random.next()), flags: ShutdownFlags(rawValue: UInt32(random.below(8))),
                                   displayMessage: units)?.encode() ?? []
        case .kvpExchange:
            body = kvpBody()
        case .vss:
            body = VSSMessage(operation: VSSOperation(rawValue: UInt8(random.below(9))), flags: UInt32(truncatingIfNeeded: random.next())).encode()
        case .fileCopy:
            body = fileCopyBody()
        default:
            body = (0..<random.below(64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        }
        var frame = ICFrame.request(type: type, transactionID: UInt8(truncatingIfNeeded: random.next()), body: body)
        if random.below(2) == 0 { frame.header.flags = .guestResponse }
        return frame.encode()
    }

    mutating func units(_ most: Int) -> [UInt16] {
        (0..<random.below(most + 1)).map { _ in random.below(4) == 0 ? UInt16(truncatingIfNeeded: random.next()) | 1 : UInt16(0x41 + random.below(26)) }
    }

    mutating func kvpBody() -> [UInt8] {
        let pool = KVPPool(rawValue: UInt8(random.below(6)))
        let key = units([4, 40, 255][random.below(3)]), text = units([4, 100, 1023][random.below(3)])
        let value: KVPExchangeValue.Value
        switch random.below(4) {
        case 0: value = .u32(UInt32(truncatingIfNeeded: random.next()))
        case 1: value = .u64(random.next(), type: random.below(2) == 0 ? .linuxU64 : .windowsU64)
        default: value = .string(text)
        }
        guard let pair = KVPExchangeValue(key: key, value: value) else { return [] }
        switch random.below(6) {
        case 0: return KVPMessage(pool: pool, body: .get(pair)).encode()
        case 1: return KVPMessage(pool: pool, body: .set(pair)).encode()
        case 2: return KVPMessage(pool: pool, body: .delete(key: key)).encode()
        case 3: return KVPMessage(pool: pool, body: .enumerate(index: UInt32(random.below(20)), pair)).encode()
        default:
            return KVPIPInfoMessage(operation: random.below(2) == 0 ? .getIPInfo : .setIPInfo, pool: pool, adapterID: units(127),
                                    addressFamily: UInt8(random.below(4)), dhcpEnabled: random.below(2) == 0, addresses: units(60),
                                    subnets: units(60), gateways: units(60), dnsServers: units(60))?.encode() ?? []
        }
    }

    mutating func fileCopyBody() -> [UInt8] {
        switch random.below(4) {
        case 0:
            guard let start = StartFileCopy(fileName: units(259).filter { $0 != 0 } + [0x61], pathName: units(200).filter { $0 != 0 },
                                            flags: FileCopyFlags(rawValue: UInt32(random.below(4))), fileSize: random.next()) else { return [] }
            return FileCopyMessage.start(start).encode()
        case 1:
            return FileCopyMessage.write(offset: random.next(), data: (0..<random.below(6145)).map { _ in UInt8(truncatingIfNeeded: random.next()) }).encode()
        case 2: return FileCopyMessage.complete.encode()
        default: return FileCopyMessage.cancel.encode()
        }
    }

    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + random.below(4)) {
            switch random.below(8) {
            case 0 where !bytes.isEmpty:   // flip a bit
                bytes[random.below(bytes.count)] ^= UInt8(1) << UInt8(random.below(8))
            case 1 where !bytes.isEmpty:   // store a random byte
                bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
            case 2:                        // truncate
                bytes = Array(bytes.prefix(random.below(bytes.count + 1)))
            case 3:                        // extend (ring padding, or junk)
                bytes += (0..<random.below(24)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            case 4 where bytes.count >= 20: // hostile icmsgsize
                let size = [0, 1, 16, 0x7fff, 0xffff, random.below(0x10000)][random.below(6)]
                bytes[18] = UInt8(truncatingIfNeeded: size); bytes[19] = UInt8(truncatingIfNeeded: size >> 8)
            case 5 where bytes.count >= 32: // hostile negotiate counts
                for at in [28, 30] where random.below(2) == 0 {
                    let count = [0, 1, 2, 99, 100, 101, 0xffff, random.below(0x10000)][random.below(8)]
                    bytes[at] = UInt8(truncatingIfNeeded: count); bytes[at + 1] = UInt8(truncatingIfNeeded: count >> 8)
                }
            case 7 where bytes.count >= 44: // hostile KVP sizes (key_size, value_size), index, file-copy size
                let at = [36, 40, 32, 76, 28][random.below(5)]
                let value = [0, 1, 2, 511, 512, 513, 2047, 2048, 2049, 6144, 6145, 0xffff_ffff, random.below(1 << 32)][random.below(13)]
                for i in 0..<4 where at + i < bytes.count { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
            case 6:                        // huge
                if random.below(64) == 0 { bytes += [UInt8](repeating: 0xa5, count: ICFrame.maximumSize) }
            default:
                break
            }
        }
        return bytes
    }

    mutating func input() -> [UInt8] {
        switch random.below(10) {
        case 0: return (0..<random.below(80)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        case 1: return seed()
        default: return mutate(seed())
        }
    }

    /// Decodes one input the way the host does and checks the invariants; nil when they hold.
    func violation(_ bytes: [UInt8]) -> String? {
        let frame: ICFrame
        do { frame = try ICFrame.decode(bytes) } catch {
            return error.description.isEmpty || error.description.contains("\n") ? "bad error text: \(error)" : nil
        }
        guard bytes.count >= ICFrame.headerSize, bytes.count <= ICFrame.maximumSize else { return "accepted \(bytes.count) bytes" }
        guard frame.encode() == bytes else { return "frame does not re-encode to its input" }
        guard Int(frame.header.messageSize) <= frame.body.count else { return "icmsgsize past the body" }
        do {
            let negotiate = try NegotiateMessage.decode(frame.body[...])
            guard negotiate.frameworkVersions.count <= 100, negotiate.messageVersions.count <= 100 else { return "counts over 100" }
            guard negotiate.size <= frame.body.count else { return "negotiate list past the body" }
            guard negotiate.encode()[...] == frame.body.prefix(negotiate.size) else { return "negotiate body does not re-encode" }
            switch ICNegotiation.choice(in: frame.body[...], offered: offered) {
            case .success(let (framework, message)):
                guard negotiate.frameworkVersions == [framework], negotiate.messageVersions == [message],
                      offered.frameworkVersions.contains(framework), offered.messageVersions.contains(message)
                else { return "negotiation accepted \(framework)/\(message) from \(negotiate)" }
            case .failure(let why):
                if negotiate.frameworkVersions.count == 1, negotiate.messageVersions.count == 1,
                   offered.frameworkVersions.contains(negotiate.frameworkVersions[0]),
                   offered.messageVersions.contains(negotiate.messageVersions[0]) {
                    return "negotiation refused a valid answer: \(why)"
                }
            }
        } catch {
            guard case .failure = ICNegotiation.choice(in: frame.body[...], offered: offered) else {
                return "negotiation accepted a body that does not decode"
            }
        }
        if let heartbeat = try? HeartbeatMessage.decode(frame.body[...]) {
            guard frame.body.count >= 8 else { return "heartbeat decoded from \(frame.body.count) bytes" }
            guard (heartbeat.applicationState != nil) == (frame.body.count >= 12) else { return "application state presence" }
        } else if frame.body.count >= 8 {
            return "heartbeat body of \(frame.body.count) bytes refused"
        }
        // Time sync, both layouts: decoded exactly when the body holds the layout, fields as sent.
        for (version, size) in [(ICVersion(4, 0), TimeSyncMessage.referenceSize), (ICVersion(3, 0), TimeSyncMessage.legacySize)] {
            if let message = try? TimeSyncMessage.decode(frame.body[...], version: version) {
                guard frame.body.count >= size else { return "time-sync \(version) decoded from \(frame.body.count) bytes" }
                let encoded = message.encode()
                guard encoded.count == size else { return "time-sync \(version) re-encodes to \(encoded.count) bytes" }
                let kept = version == ICVersion(4, 0) ? Array(0..<19) : Array(0..<8) + [24]
                guard kept.allSatisfy({ encoded[$0] == frame.body[frame.body.startIndex + $0] }) else { return "time-sync \(version) fields changed" }
            } else if frame.body.count >= size {
                return "time-sync \(version) body of \(frame.body.count) bytes refused"
            }
        }
        // Shutdown: decoded exactly when all 2060 bytes are there; the message stays within its field.
        if let message = try? ShutdownMessage.decode(frame.body[...]) {
            guard frame.body.count >= ShutdownMessage.size else { return "shutdown decoded from \(frame.body.count) bytes" }
            guard message.displayMessage.count <= ShutdownMessage.maximumMessageUnits, !message.displayMessage.contains(0) else { return "shutdown message units" }
            let encoded = message.encode()
            guard encoded.count == ShutdownMessage.size, encoded.prefix(12) == frame.body.prefix(12),
                  (try? ShutdownMessage.decode(encoded[...])) == message else { return "shutdown body does not round-trip" }
        } else if frame.body.count >= ShutdownMessage.size {
            return "shutdown body of \(frame.body.count) bytes refused"
        }
        return kvpViolation(frame.body) ?? vssViolation(frame.body) ?? fileCopyViolation(frame.body)
    }

    /// KVP: decoded only when the whole operation is present; strings within their fields and
    /// without NULs; what decodes re-encodes to something that decodes to the same message.
    func kvpViolation(_ body: [UInt8]) -> String? {
        if let message = try? KVPMessage.decode(body[...]) {
            guard let size = KVPMessage.size(of: message.operation), body.count >= size else { return "KVP \(message.operation) decoded from \(body.count) bytes" }
            let pairs: [KVPExchangeValue]
            switch message.body {
            case .get(let v), .set(let v), .enumerate(_, let v): pairs = [v]
            case .delete(let key):
                guard key.count <= KVPExchangeValue.maximumKeyUnits, !key.contains(0) else { return "KVP delete key units" }
                pairs = []
            }
            for pair in pairs {
                guard pair.key.count <= KVPExchangeValue.maximumKeyUnits, !pair.key.contains(0) else { return "KVP key units" }
                if case .string(let units) = pair.value {
                    guard units.count <= KVPExchangeValue.maximumValueUnits, !units.contains(0) else { return "KVP value units" }
                }
            }
            let encoded = message.encode()
            guard encoded.count == KVPMessage.size(of: message.operation), (try? KVPMessage.decode(encoded[...])) == message else {
                return "KVP \(message.operation) does not round-trip"
            }
        }
        if let ip = try? KVPIPInfoMessage.decode(body[...]) {
            guard body.count >= KVPIPInfoMessage.size else { return "IP info decoded from \(body.count) bytes" }
            let encoded = ip.encode()
            guard encoded.count == KVPIPInfoMessage.size, (try? KVPIPInfoMessage.decode(encoded[...])) == ip else { return "IP info does not round-trip" }
        }
        return nil
    }

    func vssViolation(_ body: [UInt8]) -> String? {
        if let message = try? VSSMessage.decode(body[...]) {
            guard body.count >= VSSMessage.size else { return "VSS decoded from \(body.count) bytes" }
            guard message.encode()[0] == body[0], message.encode()[8...] == body[8..<12] else { return "VSS fields changed" }
        } else if body.count >= VSSMessage.size {
            return "VSS body of \(body.count) bytes refused"
        }
        return nil
    }

    func fileCopyViolation(_ body: [UInt8]) -> String? {
        guard let message = try? FileCopyMessage.decode(body[...]) else { return nil }
        switch message {
        case .start(let s):
            guard body.count >= FileCopyMessage.startSize else { return "file-copy start decoded from \(body.count) bytes" }
            guard !s.fileName.isEmpty, s.fileName.count < FileCopyMessage.pathUnits, s.pathName.count < FileCopyMessage.pathUnits else { return "file-copy names" }
        case .write(_, let data):
            guard body.count >= FileCopyMessage.writeSize, data.count <= FileCopyMessage.fragmentSize else { return "file-copy write of \(data.count) from \(body.count) bytes" }
        case .complete, .cancel:
            guard body.count >= 4 + 32 else { return "file-copy header decoded from \(body.count) bytes" }
        }
        guard (try? FileCopyMessage.decode(message.encode()[...])) == message else { return "file-copy \(message.operation) does not round-trip" }
        return nil
    }
}

@Suite struct ICFramingFuzzTests {
    static var steps: Int { ProcessInfo.processInfo.environment["VENEER_FUZZ_STEPS"].flatMap { Int($0) } ?? 20_000 }
    static var seed: UInt64 {
        ProcessInfo.processInfo.environment["VENEER_FUZZ_SEED"].flatMap { UInt64($0, radix: 16) ?? UInt64($0) } ?? 0x1c_f2a3
    }

    @Test func hostileAnswersNeverBreakTheDecoders() {
        let steps = Self.steps, seed = Self.seed
        var fuzzer = FramingFuzzer(random: SplitMix64(state: seed))
        var decoded = 0, failures: [String] = []
        for step in 0..<steps {
            let bytes = fuzzer.input()
            if (try? ICFrame.decode(bytes)) != nil { decoded += 1 }
            if let problem = fuzzer.violation(bytes) {
                failures.append("step \(step): \(problem) (\(bytes.count) bytes)")
                if failures.count >= 5 { break }
            }
        }
        print("IC framing fuzz: \(steps) inputs, seed 0x\(String(seed, radix: 16)), \(decoded) decoded as frames, \(failures.count) violations")
        #expect(failures.isEmpty, "\(failures)")
        #expect(decoded > steps / 10, "the fuzzer should reach the body decoders, not just the header check")
    }
}
