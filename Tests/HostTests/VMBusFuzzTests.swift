import Foundation
import Testing
import VMBusProtocol
@testable import VeneerHost

// Seeded random guests. Each run mixes well-formed protocol steps (so the fuzzing reaches open
// channels and half-built GPADLs) with malformed, truncated and random messages and random ring
// contents, and checks after every step: no crash, only the expected hypercall statuses, every
// reply decodable and within a SynIC slot, a bounded number of replies per post, host memory
// within the configured limits, and VSP open/close events consistent with the channel state.

private let ringArea: UInt64 = 0x40_0000
private let ringPageCount = 8

private struct Fuzzer {
    var random: SeededGenerator
    let bed: VMBusTestBed
    let channels: [VMBusChannel]
    let vsps: [RecordingVSP]

    mutating func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0..<values.count, using: &random)] }
    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }

    mutating func relid() -> UInt32 { pick([0, 1, 2, 3, 4, 2047, 0xFFFF_FFFF] + channels.map(\.relid) + channels.map(\.relid)) }
    mutating func gpadlID() -> UInt32 { pick([0, 1, 2, 3, 0xE1E10, 0xFFFF_FFFF, UInt32.random(in: 0...UInt32.max, using: &random)]) }

    mutating func pfn() -> UInt64 {
        pick([ringArea >> 12 + UInt64.random(in: 0..<UInt64(ringPageCount), using: &random), 0, 0xFFF,
              0x10_0000, 0xC0000, 0xFEE00, UInt64.max, UInt64.max >> 12, UInt64.random(in: 0...UInt64.max, using: &random)])
    }

    mutating func word() -> UInt64 {
        chance(50) ? pfn() : UInt64(UInt32.random(in: 0...0x4000, using: &random)) | UInt64(pick([0, 1, 4095, 4096, 0xFFFF_FFFF] as [UInt32])) << 32
    }

    /// A message with plausible-but-random fields, of any guest-to-host kind.
    mutating func randomMessage() -> ChannelMessage {
        switch Int.random(in: 0..<11, using: &random) {
        case 0:
            return .initiateContact(InitiateContact(
                versionRequested: pick([VMBusVersion.win10_5_3.rawValue, VMBusVersion.v6_0.rawValue, VMBusVersion.win8.rawValue,
                                        VMBusVersion.win10.rawValue, UInt32.random(in: 0...UInt32.max, using: &random)]),
                targetVCPU: pick([0, 1, 2, 0xFFFF_FFFF]), interruptPageOrTargetInfo: pick([2, 3, 0x102, 0xFF, UInt64.max])))
        case 1: return .requestOffers
        case 2:
            let count = pick([0, 1, 2, 3, 0xFFFF] as [UInt16])
            let length = pick([0, 8, 16, 24, 0xFFF8, 0xFFFF, UInt16.random(in: 0...0xFFFF, using: &random)] as [UInt16])
            return .gpadlHeader(GPADLHeader(childRelid: relid(), gpadl: gpadlID(), rangeBufferLength: length, rangeCount: count,
                                            rangeWords: (0..<Int.random(in: 0...27, using: &random)).map { _ in word() }))
        case 3: return .gpadlBody(GPADLBody(gpadl: gpadlID(), words: (0..<Int.random(in: 0...28, using: &random)).map { _ in word() }))
        case 4: return .gpadlTeardown(GPADLTeardown(childRelid: relid(), gpadl: gpadlID()))
        case 5:
            return .openChannel(OpenChannel(childRelid: relid(), openID: UInt32.random(in: 0...9, using: &random), ringBufferGPADL: gpadlID(),
                                            targetVP: pick([0, 1, 2, 0xFFFF_FFFF]), downstreamRingBufferPageOffset: pick([0, 1, 2, 3, 4, 6, 7, 8, 0xFFFF_FFFF])))
        case 6: return .closeChannel(CloseChannel(childRelid: relid()))
        case 7: return .relidReleased(RelidReleased(childRelid: relid()))
        case 8: return .modifyChannel(ModifyChannel(childRelid: relid(), targetVP: pick([0, 1, 5, 0xFFFF_FFFF])))
        case 9: return .unload
        default: return pick([.allOffersDelivered, .unloadResponse, .offerChannel(OfferChannel(interfaceType: .zero, interfaceInstance: .zero, childRelid: 1, connectionID: 1))])
        }
    }

    /// A step an honest guest would take, so the random ones meet open channels and live GPADLs.
    mutating func honestStep() -> [ChannelMessage] {
        let channel = pick(channels)
        switch Int.random(in: 0..<6, using: &random) {
        case 0: return [.initiateContact(InitiateContact(versionRequested: VMBusVersion.win10_5_3.rawValue, interruptPageOrTargetInfo: 2))]
        case 1: return [.requestOffers]
        case 2:
            let first = ringArea >> 12
            let pages = (0..<UInt64(ringPageCount)).map { first + $0 }
            return VMBusTestBed.gpadlMessages(relid: channel.relid, gpadl: pick([1, 2, 0xE1E10]),
                                              ranges: [GPARange(byteCount: UInt32(ringPageCount * 4096), byteOffset: 0, pfns: pages)])
        case 3:
            return [.openChannel(OpenChannel(childRelid: channel.relid, openID: 1, ringBufferGPADL: pick([1, 2, 0xE1E10]), targetVP: 0,
                                             downstreamRingBufferPageOffset: 4))]
        case 4: return [.closeChannel(CloseChannel(childRelid: channel.relid))]
        default: return [.gpadlTeardown(GPADLTeardown(childRelid: channel.relid, gpadl: pick([1, 2, 0xE1E10])))]
        }
    }

    /// Encoded bytes, sometimes truncated, extended, or replaced by random bytes with a valid type.
    mutating func mangle(_ payload: [UInt8]) -> [UInt8] {
        switch Int.random(in: 0..<10, using: &random) {
        case 0: return Array(payload.prefix(Int.random(in: 0...payload.count, using: &random)))
        case 1: return payload + (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case 2:
            let type = UInt32.random(in: 0...25, using: &random)
            return LittleEndian.bytes(of: type) + (0..<Int.random(in: 0...236, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case 3:
            var flipped = payload
            if !flipped.isEmpty { flipped[Int.random(in: 0..<flipped.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random) }
            return flipped
        default: return payload
        }
    }

    /// The guest scribbles on a ring control page or data, as a hostile guest may at any time.
    mutating func scribbleOnRings() throws {
        let page = UInt64(Int.random(in: 0..<ringPageCount, using: &random))
        let base = ringArea + page * 4096
        if chance(60) {
            let field = pick([0, 4, 8, 12, 64])
            let value = pick([0, 8, 16, 4088, 4096, 8192, 12280, 0xFFFF_FFF8, UInt32.random(in: 0...UInt32.max, using: &random),
                              UInt32.random(in: 0...1535, using: &random) * 8])
            try bed.memory.writeValue(value, at: base + UInt64(field))
        } else {
            let offset = UInt64.random(in: 0..<4096 - 24, using: &random) & ~7
            let descriptor = PacketDescriptor(type: pick([6, 7, 9, 11, 0, 0xFFFF]), dataOffset8: pick([0, 1, 2, 3, 0x40, 0xFFFF]),
                                              length8: pick([0, 1, 2, 3, 4, 0x100, 0x1FF, 0xFFFF]), flags: 1, transactionID: 7)
            var bytes = descriptor.encode() + LittleEndian.bytes(of: UInt32(0)) + LittleEndian.bytes(of: pick([0, 1, 2, 0xFFFF_FFFF] as [UInt32]))
            bytes += LittleEndian.bytes(of: UInt32(pick([1, 4096, 0, 0xFFFF_FFFF] as [UInt32]))) + LittleEndian.bytes(of: UInt32(pick([0, 4095, 4096] as [UInt32])))
            bytes += LittleEndian.bytes(of: pfn())
            try bed.memory.load(bytes, at: base + offset)
        }
    }

    /// What a VSP does with an open channel: drain, answer, signal.
    mutating func useChannels() {
        for channel in channels {
            for _ in 0..<3 {
                do {
                    guard let packet = try channel.readPacket() else { break }
                    #expect(packet.ringLength <= 4 * 4096 && packet.payload.count < 4 * 4096)
                    if case .gpaDirect(let ranges) = packet.kind {
                        #expect(ranges.allSatisfy { $0.pfns.allSatisfy { bed.memory.isRAM($0 << 12, length: 4096) } })
                    }
                } catch {
                    #expect([ChannelError.notOpen, .stalePacket].contains(error) || { if case .ringCorrupted = error { true } else { false } }())
                    break
                }
            }
            do {
                _ = try channel.writeInBand((0..<Int.random(in: 0...300, using: &random)).map { UInt8(truncatingIfNeeded: $0) },
                                            transactionID: UInt64.random(in: 0...UInt64.max, using: &random))
            } catch {
                #expect(error == .notOpen || { if case .ringCorrupted = error { true } else { false } }())
            }
        }
    }

    func checkInvariants(after status: HypercallStatus, replies: [MessageRecorder.Posted]) {
        #expect([.success, .invalidParameter].contains(status))
        // One post answers at most every channel's offer plus ALLOFFERS_DELIVERED.
        #expect(replies.count <= channels.count + 1)
        for reply in replies {
            #expect(reply.payload.count <= 240)
            #expect((try? ChannelMessage.decode(reply.payload)) != nil)
        }
        let usage = bed.host.gpadlUsage
        #expect(usage.count <= bed.limits.maxGPADLs && usage.words <= bed.limits.maxTotalGPADLPFNs)
        for (channel, vsp) in zip(channels, vsps) {
            let events = vsp.snapshot
            let accepted = vsp.acceptOpen ? events.opened.count : 0
            #expect(accepted - events.closed == (channel.isOpen ? 1 : 0))
        }
    }
}

/// The long mode: `VENEER_FUZZ_STEPS=N` (and optionally `VENEER_FUZZ_SEED=S`) runs one random
/// guest for N steps; without it the test returns at once so the default run stays short.
private struct LongFuzzSettings {
    let steps: Int
    let seed: UInt64

    static func fromEnvironment() -> LongFuzzSettings? {
        let environment = ProcessInfo.processInfo.environment
        guard let text = environment["VENEER_FUZZ_STEPS"], let steps = Int(text), steps > 0 else { return nil }
        // Without an explicit seed, one from the clock; it is printed so a crash can be replayed.
        let seed = environment["VENEER_FUZZ_SEED"].flatMap { UInt64($0) } ?? UInt64(Date().timeIntervalSince1970 * 1000)
        return LongFuzzSettings(steps: steps, seed: seed)
    }
}

@Suite struct VMBusFuzzTests {
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func randomGuestsNeverBreakTheHost(seed: UInt64) throws {
        try runRandomGuest(seed: seed, steps: 3000)
    }

    @Test func longRandomGuestFromEnvironment() throws {
        guard let settings = LongFuzzSettings.fromEnvironment() else { return }
        print("vmbus-fuzz: \(settings.steps) steps, seed \(settings.seed)")
        let start = Date()
        try runRandomGuest(seed: settings.seed, steps: settings.steps, progressEvery: 100_000)
        print("vmbus-fuzz: done \(settings.steps) steps, seed \(settings.seed), \(Int(Date().timeIntervalSince(start))) s")
    }

    private func runRandomGuest(seed: UInt64, steps: Int, progressEvery: Int = 0) throws {
        var limits = VMBusLimits()
        limits.maxGPADLs = 8
        limits.maxGPADLsPerChannel = 4
        limits.maxPFNsPerGPADL = 64
        limits.maxTotalGPADLPFNs = 200
        let bed = try VMBusTestBed(vpCount: 2, limits: limits)
        let vsps = [RecordingVSP(), RecordingVSP(), RecordingVSP(acceptOpen: false)]
        let channels = try vsps.enumerated().map { index, vsp in
            try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: GUID(UInt32(index), 0, 0, 0)), handler: vsp)
        }
        try bed.memory.load([UInt8](repeating: 0, count: ringPageCount * 4096), at: ringArea)
        var fuzzer = Fuzzer(random: SeededGenerator(seed: seed), bed: bed, channels: channels, vsps: vsps)

        for step in 0..<steps {
            if progressEvery > 0, step > 0, step % progressEvery == 0 { print("vmbus-fuzz: step \(step), seed \(seed)") }
            let roll = Int.random(in: 0..<100, using: &fuzzer.random)
            if roll < 5 {
                // A whole honest open, on freshly initialised ring pages.
                try bed.memory.load([UInt8](repeating: 0, count: ringPageCount * 4096), at: ringArea)
                let channel = fuzzer.pick(channels)
                let gpadl = UInt32.random(in: 100...200, using: &fuzzer.random)
                let pages = (0..<UInt64(ringPageCount)).map { ringArea >> 12 + $0 }
                let steps: [ChannelMessage] = [.initiateContact(InitiateContact(versionRequested: VMBusVersion.win10_5_3.rawValue, interruptPageOrTargetInfo: 2)),
                                               .requestOffers]
                    + VMBusTestBed.gpadlMessages(relid: channel.relid, gpadl: gpadl,
                                                 ranges: [GPARange(byteCount: UInt32(ringPageCount * 4096), byteOffset: 0, pfns: pages)])
                    + [.openChannel(OpenChannel(childRelid: channel.relid, openID: 5, ringBufferGPADL: gpadl, targetVP: 1, downstreamRingBufferPageOffset: 4))]
                for message in steps {
                    let status = bed.post(message)
                    fuzzer.checkInvariants(after: status, replies: bed.messages.take())
                }
            } else if roll < 30 {
                for message in fuzzer.honestStep() {
                    let status = bed.post(message)
                    fuzzer.checkInvariants(after: status, replies: bed.messages.take())
                }
            } else if roll < 75 {
                let payload = fuzzer.mangle(fuzzer.randomMessage().encode())
                let status = bed.postRaw(payload, connectionID: fuzzer.pick([1, 1, 1, 4]))
                fuzzer.checkInvariants(after: status, replies: bed.messages.take())
            } else if roll < 85 {
                let id = fuzzer.pick([0, 1, 4, 0x2001, 0x2002, 0x2003, 0x2FFF, UInt32.random(in: 0...UInt32.max, using: &fuzzer.random)])
                let status = bed.host.handleSignalEvent(connectionID: id, flagNumber: fuzzer.pick([0, 0, 1]))
                #expect([.success, .invalidConnectionID, .invalidParameter].contains(status))
            } else if roll < 93 {
                try fuzzer.scribbleOnRings()
            } else {
                fuzzer.useChannels()
            }
        }
        // An UNLOAD always brings the host back to a clean state.
        if bed.host.negotiatedVersion == nil { _ = try bed.connect() }
        bed.post(.unload)
        #expect(try bed.replies().last == .unloadResponse)
        #expect(bed.host.gpadlUsage.count == 0 && bed.host.gpadlUsage.words == 0)
        #expect(channels.allSatisfy { !$0.isOpen })
        #expect(vsps.allSatisfy { ($0.acceptOpen ? $0.snapshot.opened.count : 0) == $0.snapshot.closed })
        // The fuzzing reached open channels.
        #expect(vsps[0].snapshot.closed + vsps[1].snapshot.closed > 0)
        // The log stays bounded however much the guest misbehaves: per kind the first 64 events,
        // then one line per power of two (fewer than 40 more below 2^40 events). Debug lines
        // (each channel message) are not throttled and not counted.
        #expect(bed.log.throttled.count <= 4 * (64 + 40) + 16)
    }

    /// Random ring indexes and descriptors under an open channel: every outcome is a packet that
    /// fits the ring, nil, or a channel error, and a reopen brings a clean ring back.
    @Test(arguments: [10, 20, 30] as [UInt64])
    func randomRingContentsNeverCrashTheChannel(seed: UInt64) throws {
        let bed = try VMBusTestBed()
        let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.network, interfaceInstance: .zero), handler: RecordingVSP())
        _ = try bed.connect()
        _ = try bed.requestOffers()
        let first = ringArea >> 12
        let pages = (0..<UInt64(ringPageCount)).map { first + $0 }
        try bed.memory.load([UInt8](repeating: 0, count: ringPageCount * 4096), at: ringArea)
        _ = try bed.createGPADL(relid: channel.relid, gpadl: 1, pfns: pages)
        var fuzzer = Fuzzer(random: SeededGenerator(seed: seed), bed: bed, channels: [channel], vsps: [])
        var corruptions = 0, packets = 0
        var openID: UInt32 = 0

        func reopen() throws {
            bed.post(.closeChannel(CloseChannel(childRelid: channel.relid)))
            try bed.memory.load([UInt8](repeating: 0, count: ringPageCount * 4096), at: ringArea)
            openID += 1
            bed.post(.openChannel(OpenChannel(childRelid: channel.relid, openID: openID, ringBufferGPADL: 1, targetVP: 0,
                                              downstreamRingBufferPageOffset: 4)))
            #expect(try bed.replies() == [.openChannelResult(OpenChannelResult(childRelid: channel.relid, openID: openID, status: 0))])
        }
        try reopen()
        let toHost = GuestRing(memory: bed.memory, pfns: Array(pages[0..<4]))

        for _ in 0..<3000 {
            if fuzzer.chance(50) {
                _ = try toHost.write(type: fuzzer.pick([6, 9, 11, 42]), transactionID: 1,
                                     body: (0..<Int.random(in: 0...200, using: &fuzzer.random)).map { _ in UInt8.random(in: 0...255, using: &fuzzer.random) })
            }
            if fuzzer.chance(40) { try fuzzer.scribbleOnRings() }
            do {
                if let packet = try channel.readPacket() {
                    packets += 1
                    #expect(packet.ringLength <= 3 * 4096 && packet.payload.count <= Int(packet.ringLength))
                }
                _ = try channel.writeInBand([1, 2, 3], transactionID: 9)
            } catch ChannelError.ringCorrupted {
                corruptions += 1
                try reopen()
            } catch {
                Issue.record("unexpected channel error \(error)")
            }
        }
        #expect(corruptions > 0 && packets > 0)
    }
}
