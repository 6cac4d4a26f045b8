import Testing
import VMBusProtocol
@testable import VeneerHost

// Packets both ways through real rings in guest RAM: the guest side is GuestRing (written from
// Linux's ring_buffer.c), the host side is VMBusChannel over RingReader/RingWriter.

private let instance = GUID(0x0102_0304, 0x0506, 0x0708, 0x090a_0b0c_0d0e_0f10)

private func openedChannel(_ bed: VMBusTestBed, outPages: Int = 3, inPages: Int = 3, shuffle: Bool = false,
                           vsp: RecordingVSP = RecordingVSP()) throws -> (VMBusChannel, GuestRing, GuestRing) {
    let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: instance), handler: vsp)
    _ = try bed.connect()
    _ = try bed.requestOffers()
    let rings = try bed.ringPages(base: 0x20_0000, outPages: outPages, inPages: inPages, shuffle: shuffle)
    _ = try bed.createGPADL(relid: channel.relid, gpadl: 5, pfns: rings.pfns)
    bed.post(.openChannel(OpenChannel(childRelid: channel.relid, openID: 1, ringBufferGPADL: 5, targetVP: 1,
                                      downstreamRingBufferPageOffset: UInt32(outPages))))
    guard try bed.replies() == [.openChannelResult(OpenChannelResult(childRelid: channel.relid, openID: 1, status: 0))] else {
        throw TestFailure("open failed")
    }
    return (channel, rings.toHost, rings.toGuest)
}

@Suite struct VMBusRingTests {
    /// Many packets of varied sizes each way through 8 KiB rings, so both wrap many times, with
    /// the guest and the host each signalling exactly when the other side's rules say so.
    @Test(arguments: [false, true])
    func packetsBothWaysWrapAround(shuffledPages: Bool) throws {
        let bed = try VMBusTestBed()
        let vsp = RecordingVSP()
        let (channel, toHost, toGuest) = try openedChannel(bed, shuffle: shuffledPages, vsp: vsp)
        var random = SeededGenerator(seed: shuffledPages ? 7 : 11)
        var sentByGuest: [(UInt64, [UInt8])] = [], receivedByHost: [(UInt64, [UInt8])] = []
        var sentByHost: [(UInt64, [UInt8])] = [], receivedByGuest: [(UInt64, [UInt8])] = []
        var transaction: UInt64 = 1

        for _ in 0..<600 {
            // The guest writes a burst; whenever its write finds the ring empty it signals.
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let body = (0..<Int.random(in: 0...900, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                let result = try toHost.write(type: 6, flags: 1, transactionID: transaction, body: body)
                guard result.written else { break }
                sentByGuest.append((transaction, body))
                transaction += 1
                if result.signal { #expect(bed.host.handleSignalEvent(connectionID: channel.connectionID) == .success) }
            }
            // The host drains and answers each request with a completion carrying the same bytes.
            while let packet = try channel.readPacket() {
                #expect(packet.kind == .inBand)
                let body = Array(packet.payload.prefix(sentByGuest[receivedByHost.count].1.count))
                receivedByHost.append((packet.transactionID, body))
                guard case .written = try channel.writeCompletion(body, transactionID: packet.transactionID) else {
                    // Full: the guest must drain before the host can continue.
                    while let packetForGuest = try toGuest.read() {
                        receivedByGuest.append((packetForGuest.descriptor.transactionID, packetForGuest.body))
                    }
                    #expect(try channel.writeCompletion(body, transactionID: packet.transactionID) == .written(signalReader: true))
                    sentByHost.append((packet.transactionID, body))
                    continue
                }
                sentByHost.append((packet.transactionID, body))
            }
            // The guest drains what arrived.
            while let packet = try toGuest.read() {
                #expect(packet.descriptor.type == 11)
                receivedByGuest.append((packet.descriptor.transactionID, packet.body))
            }
        }
        #expect(sentByGuest.count > 1000)
        #expect(receivedByHost.map(\.0) == sentByGuest.map(\.0))
        #expect(receivedByHost.map(\.1) == sentByGuest.map(\.1))
        #expect(receivedByGuest.map(\.0) == sentByHost.map(\.0))
        // Completions are padded to 8 bytes: compare the meaningful prefix.
        #expect(zip(receivedByGuest, sentByHost).allSatisfy { Array($0.1.prefix($1.1.count)) == $1.1 && $0.1.count == ($1.1.count + 7) & ~7 })
        #expect(vsp.snapshot.signalled > 0)
        // Every host signal went to the channel's flag on the VP it named.
        #expect(bed.signals.take().allSatisfy { $0 == SignalRecorder.Signal(vp: 1, sint: 2, flag: channel.relid) })
    }

    @Test func hostSignalsOnlyWhenTheGuestRingWasEmptyAndUnmasked() throws {
        let bed = try VMBusTestBed()
        let (channel, _, toGuest) = try openedChannel(bed)
        #expect(try channel.writeInBand([1], transactionID: 1) == .written(signalReader: true))
        #expect(bed.signals.take().count == 1)
        // Not empty any more: no signal.
        #expect(try channel.writeInBand([2], transactionID: 2) == .written(signalReader: false))
        #expect(bed.signals.take().isEmpty)
        // The guest drains with interrupts masked, as hv_begin_read does.
        try toGuest.set(RingControlPage.interruptMaskOffset, 1)
        while try toGuest.read() != nil {}
        #expect(try channel.writeInBand([3], transactionID: 3) == .written(signalReader: false))
        #expect(bed.signals.take().isEmpty)
        // Unmasked and drained again: the next write signals.
        try toGuest.set(RingControlPage.interruptMaskOffset, 0)
        while try toGuest.read() != nil {}
        #expect(try channel.writeInBand([4], transactionID: 4) == .written(signalReader: true))
        #expect(bed.signals.take().count == 1)
    }

    @Test func guestSignalRuleFollowsTheHostsInterruptMask() throws {
        let bed = try VMBusTestBed()
        let (channel, toHost, _) = try openedChannel(bed)
        try channel.setInterruptMask(true)
        #expect(try toHost.get(RingControlPage.interruptMaskOffset) == 1)
        #expect(try toHost.write(type: 6, transactionID: 1, body: [1]).signal == false)
        try channel.setInterruptMask(false)
        #expect(try channel.readPacket() != nil)
        #expect(try toHost.write(type: 6, transactionID: 2, body: [2]).signal == true)
    }

    @Test func hostBlockedOnAFullRingAsksForPendingSendSizeAndIsWoken() throws {
        let bed = try VMBusTestBed()
        let vsp = RecordingVSP()
        let (channel, _, toGuest) = try openedChannel(bed, outPages: 2, inPages: 2, vsp: vsp)
        let body = [UInt8](repeating: 0xAB, count: 1000)  // 1024 ring bytes with descriptor and trailer
        var written = 0
        while case .written = try channel.writeInBand(body, transactionID: UInt64(written)) { written += 1 }
        #expect(written == 3)  // 4096-byte data area, never filled completely
        #expect(try toGuest.get(RingControlPage.pendingSendSizeOffset) == 1024 + 8)
        // The guest reads one packet: 1024 bytes were free (≤ pending), now 2048: it signals.
        let first = try #require(try toGuest.read())
        #expect(first.signal)
        #expect(bed.host.handleSignalEvent(connectionID: channel.connectionID) == .success)
        #expect(vsp.snapshot.signalled == 1)
        #expect(try channel.writeInBand(body, transactionID: 99) == .written(signalReader: false))
        #expect(try toGuest.get(RingControlPage.pendingSendSizeOffset) == 0)
        // Later reads do not signal: no one is waiting.
        #expect(try toGuest.read()?.signal == false)
    }

    @Test func hostWakesAGuestWriterBlockedOnPendingSendSize() throws {
        let bed = try VMBusTestBed()
        let (channel, toHost, _) = try openedChannel(bed, outPages: 2, inPages: 2)
        let body = [UInt8](repeating: 1, count: 1000)
        while try toHost.write(type: 6, transactionID: 1, body: body).written {}
        // The blocked guest asks to be woken when 1536 bytes are free.
        try toHost.set(RingControlPage.pendingSendSizeOffset, 1536)
        _ = bed.signals.take()
        #expect(try channel.readPacket() != nil)  // 1024 free → 2048: crossing
        #expect(bed.signals.take() == [SignalRecorder.Signal(vp: 1, sint: 2, flag: channel.relid)])
        #expect(try channel.readPacket() != nil)  // 2048 → 3072: already past, no signal
        #expect(bed.signals.take().isEmpty)
        // Reaching the threshold exactly counts, and so does starting at it (Linux's
        // hv_pkt_iter_close: a writer needing more than it asked for may still be blocked there).
        while try toHost.write(type: 6, transactionID: 1, body: body).written {}
        try toHost.set(RingControlPage.pendingSendSizeOffset, 2048)
        #expect(try channel.readPacket() != nil)  // 1024 → 2048
        #expect(try channel.readPacket() != nil)  // 2048 → 3072
        #expect(bed.signals.take().count == 2)
        // Without the guest's feature bit the host never signals for space.
        while try toHost.write(type: 6, transactionID: 1, body: body).written {}
        try toHost.set(RingControlPage.featureBitsOffset, 0)
        #expect(try channel.readPacket() != nil)
        #expect(bed.signals.take().isEmpty)
    }

    @Test func gpaDirectPacketsCarryValidatedRanges() throws {
        let bed = try VMBusTestBed()
        let (channel, toHost, _) = try openedChannel(bed)
        func packet(_ ranges: [GPARange], payload: [UInt8]) -> [UInt8] {
            let header = GPADirectHeader(ranges: ranges)
            let offset = 16 + header.encodedSize
            var w = ByteWriter()
            PacketDescriptor(type: 9, dataOffset8: UInt16(offset / 8), length8: UInt16((offset + payload.count + 7) / 8),
                             flags: 1, transactionID: 7).encode(into: &w)
            header.encode(into: &w)
            w.bytes(payload)
            w.zeros((8 - payload.count % 8) % 8)
            return w.bytes
        }
        let ranges = [GPARange(byteCount: 6000, byteOffset: 512, pfns: [0x300, 0x301])]
        try toHost.writeRaw(packet(ranges, payload: [0x34, 0x12]))
        let read = try #require(try channel.readPacket())
        #expect(read.kind == .gpaDirect(ranges))
        #expect(Array(read.payload.prefix(2)) == [0x34, 0x12])

        // A PFN outside guest RAM makes the ring unusable for the host, without a crash.
        try toHost.writeRaw(packet([GPARange(byteCount: 4096, byteOffset: 0, pfns: [0xFFFF_FFFF])], payload: [1]))
        #expect(throws: ChannelError.self) { try channel.readPacket() }
        #expect(throws: ChannelError.ringCorrupted("ring corrupt: GPA-direct PFN 0xffffffff is not guest RAM")) { try channel.readPacket() }
        #expect(throws: ChannelError.ringCorrupted("ring corrupt: GPA-direct PFN 0xffffffff is not guest RAM")) {
            try channel.writeInBand([1], transactionID: 1)
        }
    }

    @Test func packetsTheRingCanNeverHoldAreRefused() throws {
        let bed = try VMBusTestBed()
        let (channel, _, _) = try openedChannel(bed, outPages: 2, inPages: 2)
        #expect(throws: ChannelError.packetTooLarge(4096)) {
            try channel.writeInBand([UInt8](repeating: 0, count: 4096 - 24), transactionID: 1)
        }
        #expect(throws: ChannelError.invalidPacket("header of 3 bytes is not 8-byte aligned")) {
            try channel.writePacket(type: 7, transactionID: 1, header: [1, 2, 3], payload: [])
        }
        // The ring stays usable after the host's own mistakes.
        #expect(try channel.writeInBand([1], transactionID: 1) == .written(signalReader: true))
    }

    @Test func advanceNeedsThePacketAtTheReadIndex() throws {
        let bed = try VMBusTestBed()
        let (channel, toHost, _) = try openedChannel(bed)
        _ = try toHost.write(type: 6, transactionID: 1, body: [1])
        _ = try toHost.write(type: 6, transactionID: 2, body: [2])
        let first = try #require(try channel.peekPacket())
        #expect(try channel.peekPacket() == first)
        try channel.advance(past: first)
        #expect(throws: ChannelError.stalePacket) { try channel.advance(past: first) }
        #expect(try channel.readPacket()?.transactionID == 2)
    }

    @Test func reopeningAfterCorruptionGivesAWorkingRing() throws {
        let bed = try VMBusTestBed()
        let vsp = RecordingVSP()
        let (channel, toHost, _) = try openedChannel(bed, vsp: vsp)
        try toHost.set(RingControlPage.writeIndexOffset, 0xFFFF_0000)
        #expect(throws: ChannelError.self) { try channel.readPacket() }
        bed.post(.closeChannel(CloseChannel(childRelid: channel.relid)))
        try toHost.set(RingControlPage.writeIndexOffset, 0)
        bed.post(.openChannel(OpenChannel(childRelid: channel.relid, openID: 2, ringBufferGPADL: 5, targetVP: 0, downstreamRingBufferPageOffset: 3)))
        #expect(try bed.replies() == [.openChannelResult(OpenChannelResult(childRelid: channel.relid, openID: 2, status: 0))])
        _ = try toHost.write(type: 6, transactionID: 3, body: [3])
        #expect(try channel.readPacket()?.transactionID == 3)
    }
}
