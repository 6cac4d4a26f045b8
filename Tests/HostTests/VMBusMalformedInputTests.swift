import Testing
import VMBusProtocol
@testable import VeneerHost

// Hostile and broken guests, case by case: every malformed request gets an error status or is
// dropped with a counted, logged reason, and the host state stays consistent.

private let instance = GUID(0xAAAA_0001, 0x0002, 0x0003, 0x0004_0005_0006_0007)

private func connectedBed(vpCount: UInt32 = 2, limits: VMBusLimits = VMBusLimits()) throws -> (VMBusTestBed, VMBusChannel, RecordingVSP) {
    let bed = try VMBusTestBed(vpCount: vpCount, limits: limits)
    let vsp = RecordingVSP()
    let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: instance), handler: vsp)
    _ = try bed.connect()
    _ = try bed.requestOffers()
    return (bed, channel, vsp)
}

private func failedGPADL(_ relid: UInt32, _ gpadl: UInt32) -> [ChannelMessage] {
    [.gpadlCreated(GPADLCreated(childRelid: relid, gpadl: gpadl, creationStatus: ChannelStatus.unsuccessful))]
}

private func failedOpen(_ relid: UInt32, _ openID: UInt32) -> [ChannelMessage] {
    [.openChannelResult(OpenChannelResult(childRelid: relid, openID: openID, status: ChannelStatus.unsuccessful))]
}

@Suite struct VMBusMalformedInputTests {
    @Test func gpadlHeadersWithImpossibleCountsAllocateNothing() throws {
        var limits = VMBusLimits()
        limits.maxPFNsPerGPADL = 4096
        let (bed, channel, _) = try connectedBed(limits: limits)
        let relid = channel.relid
        let cases: [GPADLHeader] = [
            // Huge rangecount, and range_buflen announcing more PFNs than a GPADL may have:
            // refused before anything is reserved.
            GPADLHeader(childRelid: relid, gpadl: 1, rangeBufferLength: 0xFFF8, rangeCount: 0xFFFF, rangeWords: [4096, 0x300]),
            GPADLHeader(childRelid: relid, gpadl: 2, rangeBufferLength: 0xFFF8, rangeCount: 1, rangeWords: [4096, 0x300]),
            GPADLHeader(childRelid: relid, gpadl: 3, rangeBufferLength: 16, rangeCount: 0, rangeWords: [4096, 0x300]),
            GPADLHeader(childRelid: relid, gpadl: 4, rangeBufferLength: 17, rangeCount: 1, rangeWords: [4096, 0x300]),
            GPADLHeader(childRelid: relid, gpadl: 5, rangeBufferLength: 8, rangeCount: 1, rangeWords: [4096]),
            // byte_count 0, byte_offset past the first page, PFN count not matching byte_count.
            GPADLHeader(childRelid: relid, gpadl: 6, rangeBufferLength: 16, rangeCount: 1, rangeWords: [0, 0x300]),
            GPADLHeader(childRelid: relid, gpadl: 7, rangeBufferLength: 16, rangeCount: 1, rangeWords: [1 | 4096 << 32, 0x300]),
            GPADLHeader(childRelid: relid, gpadl: 8, rangeBufferLength: 16, rangeCount: 1, rangeWords: [8192, 0x300]),
            GPADLHeader(childRelid: relid, gpadl: 9, rangeBufferLength: 24, rangeCount: 1, rangeWords: [4096, 0x300, 0x301]),
            // PFNs outside RAM, in the MMIO hole, and ones that overflow when shifted.
            GPADLHeader(childRelid: relid, gpadl: 10, rangeBufferLength: 16, rangeCount: 1, rangeWords: [4096, 0x10_0000]),
            GPADLHeader(childRelid: relid, gpadl: 11, rangeBufferLength: 16, rangeCount: 1, rangeWords: [4096, 0xFEE00]),
            GPADLHeader(childRelid: relid, gpadl: 12, rangeBufferLength: 16, rangeCount: 1, rangeWords: [4096, UInt64.max]),
            // Unknown relids.
            GPADLHeader(childRelid: 0, gpadl: 13, rangeBufferLength: 16, rangeCount: 1, rangeWords: [4096, 0x300]),
            GPADLHeader(childRelid: 0xFFFF_FFFF, gpadl: 14, rangeBufferLength: 16, rangeCount: 1, rangeWords: [4096, 0x300]),
        ]
        for header in cases {
            bed.post(.gpadlHeader(header))
            #expect(try bed.replies() == failedGPADL(header.childRelid, header.gpadl), "GPADL \(header.gpadl)")
        }
        #expect(bed.host.gpadlUsage.count == 0 && bed.host.gpadlUsage.words == 0)
        #expect(bed.host.refusedRequestCount == cases.count)
    }

    @Test func gpadlIdsAndBodiesAreChecked() throws {
        let (bed, channel, _) = try connectedBed()
        #expect(try bed.createGPADL(relid: channel.relid, gpadl: 1, pfns: [0x300]).first
            == .gpadlCreated(GPADLCreated(childRelid: channel.relid, gpadl: 1, creationStatus: 0)))
        // A duplicate id is refused and the existing GPADL survives.
        #expect(try bed.createGPADL(relid: channel.relid, gpadl: 1, pfns: [0x301]) == failedGPADL(channel.relid, 1))
        #expect(bed.host.gpadlUsage.count == 1)
        // Bodies for unknown or complete GPADLs have no one to answer: dropped.
        let dropped = bed.host.droppedMessageCount
        bed.post(.gpadlBody(GPADLBody(gpadl: 77, words: [0x300])))
        bed.post(.gpadlBody(GPADLBody(gpadl: 1, words: [0x300])))
        #expect(try bed.replies().isEmpty)
        #expect(bed.host.droppedMessageCount == dropped + 2)
        // A body completing a GPADL with a PFN outside RAM fails it and frees its budget.
        bed.post(.gpadlHeader(GPADLHeader(childRelid: channel.relid, gpadl: 2, rangeBufferLength: 24, rangeCount: 1, rangeWords: [8192, 0x300])))
        #expect(try bed.replies().isEmpty)
        #expect(bed.host.gpadlUsage.count == 2)
        bed.post(.gpadlBody(GPADLBody(gpadl: 2, words: [0x4000_0000])))
        #expect(try bed.replies() == failedGPADL(channel.relid, 2))
        #expect(bed.host.gpadlUsage.count == 1 && bed.host.gpadlUsage.words == 2)
        // Words past range_buflen are ignored (clients may pad to 240 bytes).
        bed.post(.gpadlHeader(GPADLHeader(childRelid: channel.relid, gpadl: 3, rangeBufferLength: 16, rangeCount: 1,
                                          rangeWords: [4096, 0x302, 0xDEAD, 0xBEEF])))
        #expect(try bed.replies() == [.gpadlCreated(GPADLCreated(childRelid: channel.relid, gpadl: 3, creationStatus: 0))])
    }

    @Test func gpadlLimitsHold() throws {
        var limits = VMBusLimits()
        limits.maxGPADLsPerChannel = 2
        limits.maxPFNsPerGPADL = 4
        limits.maxTotalGPADLPFNs = 9
        let (bed, channel, _) = try connectedBed(limits: limits)
        let relid = channel.relid
        // Five PFNs: over the per-GPADL limit.
        #expect(try bed.createGPADL(relid: relid, gpadl: 1, pfns: [0x300, 0x301, 0x302, 0x303, 0x304]) == failedGPADL(relid, 1))
        // Four PFNs and a range header: 5 words of the 9 the partition may hold.
        #expect(try bed.createGPADL(relid: relid, gpadl: 2, pfns: [0x300, 0x301, 0x302, 0x303]).count == 1)
        // Another 5 would make 10: over the partition limit.
        #expect(try bed.createGPADL(relid: relid, gpadl: 3, pfns: [0x300, 0x301, 0x302, 0x303]) == failedGPADL(relid, 3))
        #expect(try bed.createGPADL(relid: relid, gpadl: 4, pfns: [0x300]).count == 1)
        // A third GPADL for the channel: over the per-channel limit.
        #expect(try bed.createGPADL(relid: relid, gpadl: 5, pfns: [0x300]) == failedGPADL(relid, 5))
        #expect(bed.host.gpadlUsage.count == 2 && bed.host.gpadlUsage.words == 7)
        bed.post(.gpadlTeardown(GPADLTeardown(childRelid: relid, gpadl: 4)))
        #expect(try bed.replies() == [.gpadlTorndown(GPADLTorndown(gpadl: 4))])
        #expect(bed.host.gpadlUsage.words == 5)
        // An in-progress GPADL holds its budget; it cannot be torn down, but UNLOAD frees it.
        bed.post(.gpadlHeader(GPADLHeader(childRelid: relid, gpadl: 6, rangeBufferLength: 24, rangeCount: 1, rangeWords: [8192])))
        #expect(try bed.replies().isEmpty && bed.host.gpadlUsage.words == 8)
        bed.post(.gpadlTeardown(GPADLTeardown(childRelid: relid, gpadl: 6)))
        #expect(try bed.replies().isEmpty && bed.host.gpadlUsage.count == 2)
        bed.post(.unload)
        #expect(try bed.replies() == [.unloadResponse])
        #expect(bed.host.gpadlUsage.count == 0 && bed.host.gpadlUsage.words == 0)
    }

    @Test func openRequestsAreValidated() throws {
        let (bed, channel, vsp) = try connectedBed()
        let relid = channel.relid
        let rings = try bed.ringPages(base: 0x30_0000, outPages: 2, inPages: 2)
        _ = try bed.createGPADL(relid: relid, gpadl: 1, pfns: rings.pfns)
        // A GPADL whose range starts inside a page cannot hold rings.
        for message in VMBusTestBed.gpadlMessages(relid: relid, gpadl: 2, ranges: [GPARange(byteCount: 4 * 4096 - 8, byteOffset: 8, pfns: rings.pfns)]) {
            bed.post(message)
        }
        _ = try bed.replies()
        let bad: [OpenChannel] = [
            OpenChannel(childRelid: 99, openID: 1, ringBufferGPADL: 1, targetVP: 0, downstreamRingBufferPageOffset: 2),
            OpenChannel(childRelid: relid, openID: 2, ringBufferGPADL: 7, targetVP: 0, downstreamRingBufferPageOffset: 2),
            OpenChannel(childRelid: relid, openID: 3, ringBufferGPADL: 2, targetVP: 0, downstreamRingBufferPageOffset: 2),
            OpenChannel(childRelid: relid, openID: 4, ringBufferGPADL: 1, targetVP: 0, downstreamRingBufferPageOffset: 0),
            OpenChannel(childRelid: relid, openID: 5, ringBufferGPADL: 1, targetVP: 0, downstreamRingBufferPageOffset: 1),
            OpenChannel(childRelid: relid, openID: 6, ringBufferGPADL: 1, targetVP: 0, downstreamRingBufferPageOffset: 3),
            OpenChannel(childRelid: relid, openID: 7, ringBufferGPADL: 1, targetVP: 0, downstreamRingBufferPageOffset: 4),
            OpenChannel(childRelid: relid, openID: 8, ringBufferGPADL: 1, targetVP: 0, downstreamRingBufferPageOffset: 0xFFFF_FFFF),
            OpenChannel(childRelid: relid, openID: 9, ringBufferGPADL: 1, targetVP: 2, downstreamRingBufferPageOffset: 2),
        ]
        for open in bad {
            bed.post(.openChannel(open))
            #expect(try bed.replies() == failedOpen(open.childRelid, open.openID), "open \(open.openID)")
        }
        // Ring indexes the guest left out of range make the open fail too.
        try rings.toHost.set(RingControlPage.readIndexOffset, 4096)
        bed.post(.openChannel(OpenChannel(childRelid: relid, openID: 10, ringBufferGPADL: 1, targetVP: 0, downstreamRingBufferPageOffset: 2)))
        #expect(try bed.replies() == failedOpen(relid, 10))
        try rings.toHost.set(RingControlPage.readIndexOffset, 0)
        #expect(vsp.snapshot.opened.isEmpty && !channel.isOpen)

        // Interrupts off (target VP 0xFFFFFFFF): opens, and writes never signal.
        bed.post(.openChannel(OpenChannel(childRelid: relid, openID: 11, ringBufferGPADL: 1, targetVP: 0xFFFF_FFFF, downstreamRingBufferPageOffset: 2)))
        #expect(try bed.replies() == [.openChannelResult(OpenChannelResult(childRelid: relid, openID: 11, status: 0))])
        #expect(try channel.writeInBand([1], transactionID: 1) == .written(signalReader: true))
        #expect(bed.signals.take().isEmpty)
        // Opening twice fails the second request and leaves the channel open.
        bed.post(.openChannel(OpenChannel(childRelid: relid, openID: 12, ringBufferGPADL: 1, targetVP: 0, downstreamRingBufferPageOffset: 2)))
        #expect(try bed.replies() == failedOpen(relid, 12))
        #expect(channel.isOpen && vsp.snapshot.opened.count == 1 && vsp.snapshot.closed == 0)
    }

    @Test func teardownCloseAndReleaseMisuseIsDropped() throws {
        let (bed, channel, vsp) = try connectedBed()
        let relid = channel.relid
        let rings = try bed.ringPages(base: 0x30_0000, outPages: 2, inPages: 2)
        _ = try bed.createGPADL(relid: relid, gpadl: 1, pfns: rings.pfns)
        let before = bed.host.droppedMessageCount
        bed.post(.closeChannel(CloseChannel(childRelid: relid)))  // not open
        bed.post(.gpadlTeardown(GPADLTeardown(childRelid: relid + 1, gpadl: 1)))  // wrong relid
        bed.post(.gpadlTeardown(GPADLTeardown(childRelid: relid, gpadl: 2)))  // unknown id
        bed.post(.openChannel(OpenChannel(childRelid: relid, openID: 1, ringBufferGPADL: 1, targetVP: 0, downstreamRingBufferPageOffset: 2)))
        _ = try bed.replies()
        bed.post(.gpadlTeardown(GPADLTeardown(childRelid: relid, gpadl: 1)))  // ring in use
        bed.post(.relidReleased(RelidReleased(childRelid: relid)))  // open channel
        bed.post(.relidReleased(RelidReleased(childRelid: 1234)))  // unknown
        #expect(try bed.replies().isEmpty)
        #expect(bed.host.droppedMessageCount == before + 6)
        #expect(channel.isOpen && vsp.snapshot.closed == 0 && bed.host.gpadlUsage.count == 1)
        #expect(bed.log.all.contains { $0.contains("the ring of open relid \(relid)") })
    }

    @Test func versionGames() throws {
        let bed = try VMBusTestBed(vpCount: 2)
        let vsp = RecordingVSP()
        let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: instance), handler: vsp)
        // Everything but INITIATE_CONTACT before a connection is dropped.
        for message: ChannelMessage in [.requestOffers, .unload, .closeChannel(CloseChannel(childRelid: 1)),
                                        .gpadlBody(GPADLBody(gpadl: 1, words: [1]))] {
            bed.post(message)
        }
        #expect(try bed.replies().isEmpty && bed.host.droppedMessageCount == 4)
        // A VP that does not exist: no one to answer.
        #expect(bed.contact(.win10_5_3, targetVCPU: 2) == .success)
        #expect(bed.messages.take().isEmpty)
        // Another SINT or VTL: refused on the SINT the guest named.
        #expect(bed.contact(.win10_5_3, sint: 3) == .success)
        let refusal = bed.messages.take()
        #expect(refusal.count == 1 && refusal.first?.sint == 3)
        #expect(try ChannelMessage.decode(refusal.first?.payload ?? []) == .versionResponse(VersionResponse(versionSupported: false)))
        #expect(bed.contact(.win10_5_3, sint: 16) == .success)
        #expect(bed.messages.take().isEmpty)
        #expect(bed.contact(.win10_5_3, vtl: 1) == .success)
        #expect(try bed.replies() == [.versionResponse(VersionResponse(versionSupported: false))])
        // Guest-to-host direction only.
        _ = try openChannel(bed, channel)
        for message: ChannelMessage in [.allOffersDelivered, .unloadResponse, .versionResponse(VersionResponse(versionSupported: true)),
                                        .gpadlCreated(GPADLCreated(childRelid: 1, gpadl: 1, creationStatus: 0))] {
            bed.post(message)
        }
        #expect(try bed.replies().isEmpty)
        // Asking for 6.0 while connected resets the connection, then refuses.
        #expect(bed.contact(.v6_0) == .success)
        #expect(try bed.replies() == [.versionResponse(VersionResponse(versionSupported: false))])
        #expect(vsp.snapshot.closed == 1 && bed.host.negotiatedVersion == nil && bed.host.gpadlUsage.count == 0)
        // MODIFYCHANNEL before 4.1 is not part of the protocol.
        _ = try bed.connect(.win10)
        bed.post(.modifyChannel(ModifyChannel(childRelid: channel.relid, targetVP: 1)))
        #expect(try bed.replies().isEmpty)
    }

    @Test func undecodableMessagesAreDroppedAndCounted() throws {
        let (bed, _, _) = try connectedBed()
        let before = bed.host.droppedMessageCount
        let samples: [[UInt8]] = [
            [], [1, 0, 0], LittleEndian.bytes(of: UInt64(0)), LittleEndian.bytes(of: UInt64(18)), LittleEndian.bytes(of: UInt64(21)),
            LittleEndian.bytes(of: UInt64(0xFFFF_FFFF)), Array(OpenChannel(childRelid: 1, openID: 1, ringBufferGPADL: 1, targetVP: 0,
                                                                          downstreamRingBufferPageOffset: 2).encode().prefix(147)),
        ]
        for payload in samples { #expect(bed.postRaw(payload) == .success) }
        #expect(try bed.replies().isEmpty)
        #expect(bed.host.droppedMessageCount == before + samples.count)
    }
}
