import Synchronization
import Testing
import VMBusProtocol
@testable import VeneerHost

// ABI 1.7's VMBus host side: sub-channels of an open primary (offered, opened on rings of their
// own, withdrawn with the primary), GPADL pages by id with owner checks, guest-RAM segments, and
// batched writes that signal the guest once. The guest is the scripted one of VMBusTestSupport.

private let storageInstance = GUID(0x5151_5151, 0x2222, 0x3333, 0x4444_5555_6666_7777)

/// Records every event of every channel it handles, in order, by relid.
private final class EventLog: VMBusChannelHandler {
    let events = Mutex<[String]>([])
    func channelOpened(_ channel: VMBusChannel, userData: [UInt8]) -> Bool { note("opened \(channel.relid)"); return true }
    func channelSignalled(_ channel: VMBusChannel) { note("signalled \(channel.relid)") }
    func channelClosed(_ channel: VMBusChannel) { note("closed \(channel.relid)") }
    func channelRetired(_ channel: VMBusChannel) { note("retired \(channel.relid)") }
    private func note(_ event: String) { events.withLock { $0.append(event) } }
    func take() -> [String] { events.withLock { e in defer { e = [] }; return e } }
}

/// A storage primary, connected, offered and open (ring GPADL 0xE1E10 at 1 MiB).
private func openPrimary(_ bed: VMBusTestBed, _ log: EventLog) throws -> (VMBusChannel, GuestRing, GuestRing) {
    let primary = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: storageInstance,
                                                            userDefined: [7]), handler: log)
    let rings = try openChannel(bed, primary)
    _ = log.take()
    return (primary, rings.toHost, rings.toGuest)
}

/// Opens channel `channel` as Linux opens a sub-channel: a ring GPADL created with the
/// sub-channel's own relid, then OPENCHANNEL.
@discardableResult
private func openOwnRing(_ bed: VMBusTestBed, _ channel: VMBusChannel, base: UInt64, gpadl: UInt32) throws -> (toHost: GuestRing, toGuest: GuestRing) {
    let rings = try bed.ringPages(base: base, outPages: 2, inPages: 2)
    #expect(try bed.createGPADL(relid: channel.relid, gpadl: gpadl, pfns: rings.pfns)
        == [.gpadlCreated(GPADLCreated(childRelid: channel.relid, gpadl: gpadl, creationStatus: 0))])
    bed.post(.openChannel(OpenChannel(childRelid: channel.relid, openID: 9, ringBufferGPADL: gpadl, targetVP: 1,
                                      downstreamRingBufferPageOffset: 2)))
    guard try bed.replies() == [.openChannelResult(OpenChannelResult(childRelid: channel.relid, openID: 9, status: 0))] else {
        throw TestFailure("sub-channel \(channel.relid) did not open")
    }
    return (rings.toHost, rings.toGuest)
}

@Suite struct VMBusSubchannelTests {
    @Test func subchannelsAreOfferedWithThePrimarysIdentityAndTheNextIndexes() throws {
        let bed = try VMBusTestBed()
        let log = EventLog()
        let (primary, _, _) = try openPrimary(bed, log)
        let subs = try bed.host.registerSubchannels(of: primary, handlers: [log, log, log])
        let offers = try bed.replies().compactMap { if case .offerChannel(let o) = $0 { o } else { nil } }
        #expect(offers.count == 3, "a connected guest sees them at once")
        #expect(offers.map(\.childRelid) == subs.map(\.relid))
        #expect(offers.map(\.subChannelIndex) == [1, 2, 3])
        #expect(offers.allSatisfy { $0.interfaceType == DeviceClass.scsi && $0.interfaceInstance == storageInstance })
        #expect(offers.allSatisfy { Array($0.userDefined.prefix(1)) == [7] })
        #expect(Set(subs.map(\.relid) + [primary.relid]).count == 4, "relids from the common pool, all distinct")
        #expect(offers.map(\.connectionID) == subs.map(\.connectionID))

        // More later continue the numbering.
        let more = try bed.host.registerSubchannels(of: primary, handlers: [log])
        #expect(more.map(\.offer.subChannelIndex) == [4])
        _ = try bed.replies()

        // Each opens on its own ring and is signalled on its own connection id.
        let rings = try openOwnRing(bed, subs[0], base: 0x20_0000, gpadl: 0x5001)
        #expect(subs[0].isOpen && !subs[1].isOpen)
        #expect(try rings.toHost.write(type: 6, transactionID: 5, body: [1, 2, 3]).written)
        #expect(bed.host.handleSignalEvent(connectionID: subs[0].connectionID) == .success)
        #expect(try subs[0].readPacket()?.transactionID == 5)
        #expect(try subs[0].writeCompletion([1], transactionID: 5) == .written(signalReader: true))
        #expect(bed.signals.take() == [SignalRecorder.Signal(vp: 1, sint: 2, flag: subs[0].relid)])
        #expect(log.take() == ["opened \(subs[0].relid)", "signalled \(subs[0].relid)"])
    }

    @Test func onlyAnOpenPrimaryGetsSubchannelsAndAtMostSixtyFour() throws {
        let bed = try VMBusTestBed()
        let log = EventLog()
        let closed = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.network, interfaceInstance: .zero), handler: log)
        #expect(throws: VMBusHostError.notAnOpenPrimary(closed.relid)) { try bed.host.registerSubchannels(of: closed, handlers: [log]) }

        let (primary, _, _) = try openPrimary(bed, log)
        let subs = try bed.host.registerSubchannels(of: primary, handlers: Array(repeating: log, count: 60))
        #expect(throws: VMBusHostError.notAnOpenPrimary(subs[0].relid), "a sub-channel has no sub-channels") {
            try bed.host.registerSubchannels(of: subs[0], handlers: [log])
        }
        _ = try bed.replies()
        #expect(throws: VMBusHostError.tooManySubchannels(primary: primary.relid, limit: 64)) {
            try bed.host.registerSubchannels(of: primary, handlers: Array(repeating: log, count: 5))
        }
        #expect(try bed.replies().isEmpty, "all or nothing: none of the five was offered")
        #expect(try bed.host.registerSubchannels(of: primary, handlers: Array(repeating: log, count: 4)).count == 4)
        #expect(bed.host.subchannelRelids(of: primary).count == 64)
    }

    @Test func subchannelsNeedFreeRelids() throws {
        var limits = VMBusLimits()
        limits.maxChannels = 3
        let bed = try VMBusTestBed(limits: limits)
        let log = EventLog()
        let (primary, _, _) = try openPrimary(bed, log)
        #expect(throws: VMBusHostError.tooManyChannels(limit: 3)) { try bed.host.registerSubchannels(of: primary, handlers: [log, log, log]) }
        #expect(bed.host.subchannelRelids(of: primary).isEmpty)
        #expect(try bed.host.registerSubchannels(of: primary, handlers: [log, log]).count == 2)
    }

    @Test func closingThePrimaryClosesThenRescindsItsSubchannels() throws {
        let bed = try VMBusTestBed()
        let log = EventLog()
        let (primary, _, _) = try openPrimary(bed, log)
        let subs = try bed.host.registerSubchannels(of: primary, handlers: [log, log])
        _ = try bed.replies()
        try openOwnRing(bed, subs[1], base: 0x20_0000, gpadl: 0x5002)
        _ = log.take()

        bed.post(.closeChannel(CloseChannel(childRelid: primary.relid)))
        // The open sub-channel hears it is closed before it is withdrawn, and before the primary closes.
        #expect(log.take() == ["retired \(subs[0].relid)", "closed \(subs[1].relid)", "retired \(subs[1].relid)",
                               "closed \(primary.relid)"])
        #expect(try bed.replies() == subs.map { .rescindChannelOffer(RescindChannelOffer(childRelid: $0.relid)) })
        #expect(subs.allSatisfy { $0.isRetired && !$0.isOpen } && !primary.isRetired)
        #expect(bed.host.subchannelRelids(of: primary).isEmpty)
        #expect(bed.host.handleSignalEvent(connectionID: subs[1].connectionID) == .invalidConnectionID)

        // The relids stay reserved until the guest releases them; then they are reused.
        for sub in subs { bed.post(.relidReleased(RelidReleased(childRelid: sub.relid))) }
        #expect(try bed.replies().isEmpty)
        #expect(bed.host.gpadlUsage.count == 1, "the sub-channel's ring GPADL went with its relid; the primary's stays")
        let heartbeat = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.heartbeat, interfaceInstance: .zero), handler: log)
        #expect(heartbeat.relid == subs[0].relid, "the lowest free relid again")
    }

    @Test func aReconnectingGuestIsOfferedPrimariesOnly() throws {
        let bed = try VMBusTestBed()
        let log = EventLog()
        let (primary, _, _) = try openPrimary(bed, log)
        let subs = try bed.host.registerSubchannels(of: primary, handlers: [log, log])
        _ = try bed.replies()
        try openOwnRing(bed, subs[0], base: 0x20_0000, gpadl: 0x5003)
        _ = log.take()

        bed.post(.unload)
        #expect(try bed.replies() == [.unloadResponse])
        #expect(log.take() == ["closed \(subs[0].relid)", "retired \(subs[0].relid)", "retired \(subs[1].relid)",
                               "closed \(primary.relid)"])
        _ = try bed.connect()
        #expect(try bed.requestOffers().map(\.childRelid) == [primary.relid])
        // A new primary open starts the numbering over; the old relids were free at once.
        try openOwnRing(bed, primary, base: 0x30_0000, gpadl: 0x6000)
        let again = try bed.host.registerSubchannels(of: primary, handlers: [log])
        #expect(again.map(\.offer.subChannelIndex) == [1])
        #expect(again.map(\.relid) == [subs[0].relid])
    }

    @Test func unregisteringThePrimaryTakesItsSubchannels() throws {
        let bed = try VMBusTestBed()
        let log = EventLog()
        let (primary, _, _) = try openPrimary(bed, log)
        let subs = try bed.host.registerSubchannels(of: primary, handlers: [log, log])
        _ = try bed.replies()
        bed.host.unregister(primary)
        #expect(try bed.replies() == (subs + [primary]).map { .rescindChannelOffer(RescindChannelOffer(childRelid: $0.relid)) })
        #expect(log.take() == ["retired \(subs[0].relid)", "retired \(subs[1].relid)", "closed \(primary.relid)", "retired \(primary.relid)"])
        #expect(primary.isRetired && subs.allSatisfy(\.isRetired))
        // Unregistering a sub-channel alone (e.g. twice) is harmless.
        bed.host.unregister(subs[0])
        #expect(try bed.replies().isEmpty)
    }

    @Test func gpadlSegmentsBelongToTheirChannelOrItsPrimary() throws {
        let bed = try VMBusTestBed()
        let log = EventLog()
        let (primary, _, _) = try openPrimary(bed, log)
        let subs = try bed.host.registerSubchannels(of: primary, handlers: [log])
        let other = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.network, interfaceInstance: .zero), handler: log)
        _ = try bed.replies()
        // netvsc's receive buffer: pages 0x400-0x402 and 0x500, created for the primary.
        _ = try bed.createGPADL(relid: primary.relid, gpadl: 0x77, pfns: [0x400, 0x401, 0x402, 0x500])
        _ = try bed.createGPADL(relid: other.relid, gpadl: 0x78, pfns: [0x600])
        let expected = [VMBusSegment(gpa: 0x40_0000, length: 0x3000), VMBusSegment(gpa: 0x50_0000, length: 0x1000)]
        #expect(bed.host.gpadlSegments(channel: primary, gpadl: 0x77) == expected)
        #expect(bed.host.gpadlSegments(channel: subs[0], gpadl: 0x77) == expected, "a sub-channel reaches its primary's")
        #expect(bed.host.gpadlSegments(channel: other, gpadl: 0x77) == nil, "not another channel's")
        #expect(bed.host.gpadlSegments(channel: primary, gpadl: 0x78) == nil)
        #expect(bed.host.gpadlSegments(channel: primary, gpadl: 0x79) == nil, "no such GPADL")

        // One still being built is not handed out.
        let words = (0..<40).map { UInt64(0x700 + $0) }
        bed.post(VMBusTestBed.gpadlMessages(relid: primary.relid, gpadl: 0x80, ranges: [GPARange(byteCount: 40 * 4096, byteOffset: 0, pfns: words)])[0])
        #expect(bed.host.gpadlSegments(channel: primary, gpadl: 0x80) == nil)
    }

    @Test func segmentsStartAtTheByteOffsetAndMergeAdjacentPages() throws {
        let bed = try VMBusTestBed()
        let ranges = [GPARange(byteCount: 0x2000, byteOffset: 0x800, pfns: [0x100, 0x101, 0x200]),
                      GPARange(byteCount: 0x10, byteOffset: 0x800, pfns: [0x200])]
        // The second range continues the first one's last page: one run across the two ranges.
        #expect(VMBusSegment.segments(of: ranges, memory: bed.memory)
            == [VMBusSegment(gpa: 0x10_0800, length: 0x1800), VMBusSegment(gpa: 0x20_0000, length: 0x810)])
        let total = VMBusSegment.segments(of: ranges, memory: bed.memory)?.reduce(0) { $0 + $1.length }
        #expect(total == 0x2010, "lengths sum to the byte counts")
        #expect(VMBusSegment.segments(of: [GPARange(byteCount: 0x1000, byteOffset: 0, pfns: [0xFFFF_FFFF])], memory: bed.memory) == nil)
        #expect(VMBusSegment.segments(of: [GPARange(byteCount: 0x2000, byteOffset: 0, pfns: [0x100])], memory: bed.memory) == nil,
                "too few pages for the byte count")
    }

    @Test func aBatchSignalsTheGuestOnce() throws {
        let bed = try VMBusTestBed()
        let log = EventLog()
        let (primary, _, toGuest) = try openPrimary(bed, log)
        let packets = (0..<10).map { OutgoingRingPacket(type: 11, transactionID: UInt64($0), payload: [UInt8](repeating: UInt8($0), count: 20)) }
        #expect(try primary.writeBatch(packets) == 10)
        #expect(bed.signals.take().count == 1, "one signal for ten packets")
        // The guest has not read: the next batch needs no signal.
        let transfer = OutgoingRingPacket(type: 7, transactionID: 99, header: [1, 0, 1, 0, 1, 0, 0, 0, 0x40, 0, 0, 0, 0x80, 0, 0, 0],
                                          payload: [0xAB])
        #expect(try primary.writeBatch([transfer]) == 1)
        #expect(bed.signals.take().isEmpty)
        for i in 0..<10 {
            let read = try #require(try toGuest.read())
            #expect(read.descriptor.transactionID == UInt64(i) && read.descriptor.type == 11)
            #expect(Array(read.body.prefix(20)) == [UInt8](repeating: UInt8(i), count: 20))
        }
        let page = try #require(try toGuest.read())
        #expect(page.descriptor.type == 7 && page.descriptor.dataOffset8 == 4, "offset8 = (16 + header) / 8")
        #expect(Array(page.body.prefix(1)) == [0xAB])
        #expect(try toGuest.read() == nil)
        // Drained: the next batch signals again.
        #expect(try primary.writeBatch([packets[0]]) == 1)
        #expect(bed.signals.take().count == 1)
    }

    @Test func aBatchStopsAtTheFirstPacketThatDoesNotFitAndMalformedOnesWriteNothing() throws {
        let bed = try VMBusTestBed()
        let log = EventLog()
        let (primary, _, toGuest) = try openPrimary(bed, log)   // one 4096-byte data page each way
        let big = (0..<10).map { OutgoingRingPacket(type: 6, transactionID: UInt64($0), payload: [UInt8](repeating: 1, count: 992)) }
        let written = try primary.writeBatch(big)
        #expect(written == 4, "4 x 1016 ring bytes fit a 4096-byte ring, a fifth does not")
        #expect(bed.signals.take().count == 1)
        #expect(try toGuest.get(RingControlPage.pendingSendSizeOffset) == 1016 + 8, "asks to be signalled when the next fits")
        // The rest go in once the guest made room.
        var read = 0
        while try toGuest.read() != nil { read += 1 }
        #expect(read == 4)
        #expect(try primary.writeBatch(Array(big[written...])) == 4)

        let before = try toGuest.get(RingControlPage.writeIndexOffset)
        #expect(throws: ChannelError.invalidPacket("header of 4 bytes is not 8-byte aligned")) {
            try primary.writeBatch([big[0], OutgoingRingPacket(type: 7, transactionID: 1, header: [1, 2, 3, 4], payload: [])])
        }
        #expect(throws: ChannelError.packetTooLarge(4096 + 24)) {
            try primary.writeBatch([big[0], OutgoingRingPacket(type: 6, transactionID: 1, payload: [UInt8](repeating: 0, count: 4096))])
        }
        #expect(try toGuest.get(RingControlPage.writeIndexOffset) == before, "nothing written")
        #expect(try primary.writeBatch([]) == 0)
    }

    @Test func aSegmentedReadDeliversOnlyWhenBytesAndSegmentsBothFit() {
        let segments = [VMBusSegment(gpa: 0x1000, length: 0x200), VMBusSegment(gpa: 0x3000, length: 0x10)]
        var buffer = [UInt8](repeating: 0, count: 8)
        func deliver(_ capacity: Int, segments found: [VMBusSegment]?, header: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]) -> VMBusSegmentedRead {
            buffer.withUnsafeMutableBytes { raw in
                VMBusSegmentedRead.deliver(type: 9, flags: 1, transactionID: 3, header: header, payload: [9, 9, 9, 9],
                                           segments: found, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<min(capacity, 8)]),
                                           segmentCapacity: 2)
            }
        }
        // GPA direct: the range list stays out of the buffer, the segments come instead.
        let small = deliver(3, segments: segments)
        #expect(small.status == .noSpace && small.result?.payloadLength == 4 && small.result?.headerLength == 0 && small.segments.count == 2)
        #expect(buffer == [0, 0, 0, 0, 0, 0, 0, 0], "nothing copied")
        let fits = deliver(4, segments: segments)
        #expect(fits.status == .ok && fits.segments == segments && Array(buffer.prefix(4)) == [9, 9, 9, 9])
        let tooMany = deliver(8, segments: segments + [VMBusSegment(gpa: 0x5000, length: 1)])
        #expect(tooMany.status == .noSpace && tooMany.segments.count == 3)
        // Any other packet: header then payload, as vmbus_read gives them.
        let inBand = deliver(8, segments: nil, header: [7, 7, 7, 7])
        #expect(inBand.status == .ok && inBand.segments.isEmpty && inBand.result?.headerLength == 4 && buffer == [7, 7, 7, 7, 9, 9, 9, 9])
    }
}
