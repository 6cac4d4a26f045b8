import Testing
import VMBusProtocol
@testable import VeneerHost

// A scripted guest playing the channel-management protocol the way Linux hv_vmbus does, against
// VMBusHost over real guest RAM, with recorders in place of the SynIC.

private let scsiInstance = GUID(0x1111_2222, 0x3333, 0x4444, 0x5555_6666_7777_8888)
private let netInstance = GUID(0x9999_aaaa, 0xbbbb, 0xcccc, 0xdddd_eeee_ffff_0000)
private let ringBase: UInt64 = 0x10_0000

@Suite struct VMBusHostProtocolTests {
    @Test func negotiatesTheNewestVersionTheGuestOffers() throws {
        let bed = try VMBusTestBed()
        let response = try bed.connect(.win10_5_3)
        #expect(response.versionSupported == 1)
        #expect(response.connectionState == 0)
        // From 5.0 the guest posts everything after INITIATE_CONTACT to this connection id.
        #expect(response.messageConnectionID == VMBusHost.messageConnectionID)
        #expect(bed.host.negotiatedVersion == .win10_5_3)
    }

    @Test func refusesVersionsOutsideFourToFiveThreeSoTheGuestStepsDown() throws {
        let bed = try VMBusTestBed()
        // Linux's order, newest first, from a kernel that knows 6.0; older ones for completeness.
        for version in [VMBusVersion.v6_0, VMBusVersion(major: 5, minor: 4), .win8_1, .win8, .win7, .ws2008] {
            #expect(bed.contact(version) == .success)
            let replies = try bed.replies()
            #expect(replies == [.versionResponse(VersionResponse(versionSupported: false))], "version \(version)")
            #expect(bed.host.negotiatedVersion == nil)
        }
        #expect(bed.contact(.win10_5_3) == .success)
        #expect(try bed.replies() == [.versionResponse(VersionResponse(versionSupported: true, messageConnectionID: 1))])
        #expect(bed.host.negotiatedVersion == .win10_5_3)
    }

    @Test(arguments: [VMBusVersion.win10, .win10_4_1, .win10_5_0, .win10_5_1, .win10_5_2, .win10_5_3])
    func acceptsEachSupportedVersion(_ version: VMBusVersion) throws {
        let bed = try VMBusTestBed()
        let response = try bed.connect(version)
        #expect(response.versionSupported == 1)
        // Below 5.0 the field carries the selected version; the guest ignores it.
        #expect(response.messageConnectionID == (version >= .win10_5_0 ? 1 : version.rawValue))
        #expect(bed.host.negotiatedVersion == version)
    }

    @Test func repliesGoToTheVPAndSINTTheGuestNamed() throws {
        let bed = try VMBusTestBed(vpCount: 4)
        #expect(bed.contact(.win10_5_3, targetVCPU: 3) == .success)
        let posted = bed.messages.take()
        #expect(posted.count == 1 && posted.first?.vp == 3 && posted.first?.sint == 2)
        #expect(bed.post(.requestOffers) == .success)
        #expect(bed.messages.take().allSatisfy { $0.vp == 3 && $0.sint == 2 })
    }

    @Test func offersEveryChannelThenAllOffersDelivered() throws {
        let bed = try VMBusTestBed()
        let scsi = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: scsiInstance,
                                                             userDefined: [1, 2, 3]), handler: RecordingVSP())
        let net = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.network, interfaceInstance: netInstance),
                                        handler: RecordingVSP())
        _ = try bed.connect()
        let offers = try bed.requestOffers()
        #expect(offers.count == 2)
        #expect(offers.map(\.childRelid) == [scsi.relid, net.relid])
        #expect(offers.map(\.interfaceType) == [DeviceClass.scsi, DeviceClass.network])
        #expect(offers.map(\.interfaceInstance) == [scsiInstance, netInstance])
        #expect(offers.map(\.connectionID) == [scsi.connectionID, net.connectionID])
        #expect(Set([scsi.relid, net.relid]).count == 2 && !offers.contains { $0.childRelid == 0 || $0.childRelid > 2047 })
        #expect(offers.allSatisfy { $0.monitorAllocated == 0 && $0.isDedicatedInterrupt == 1 })
        #expect(offers.allSatisfy { ![1, 4].contains($0.connectionID) })
        #expect(Array(offers[0].userDefined.prefix(4)) == [1, 2, 3, 0])

        // Once per connection.
        #expect(bed.post(.requestOffers) == .success)
        #expect(try bed.replies().isEmpty)
        #expect(bed.host.droppedMessageCount == 1)

        // A device added later is offered at once.
        let late = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.heartbeat, interfaceInstance: .zero),
                                         handler: RecordingVSP())
        guard case .offerChannel(let offer)? = try bed.replies().first else { throw TestFailure("no offer for the late device") }
        #expect(offer.childRelid == late.relid)
    }

    @Test func registrationRejectsDuplicatesAndOversizedOffers() throws {
        let bed = try VMBusTestBed()
        _ = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: scsiInstance), handler: RecordingVSP())
        #expect(throws: VMBusHostError.duplicateInstance(scsiInstance)) {
            try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: scsiInstance), handler: RecordingVSP())
        }
        #expect(throws: VMBusHostError.userDefinedTooLong(121)) {
            try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.kvp, interfaceInstance: .zero,
                                                      userDefined: [UInt8](repeating: 0, count: 121)), handler: RecordingVSP())
        }
        var limits = VMBusLimits()
        limits.maxChannels = 2
        let small = try VMBusTestBed(limits: limits)
        _ = try small.host.register(offer: ChannelOffer(interfaceType: DeviceClass.kvp, interfaceInstance: .zero), handler: RecordingVSP())
        _ = try small.host.register(offer: ChannelOffer(interfaceType: DeviceClass.vss, interfaceInstance: .zero), handler: RecordingVSP())
        #expect(throws: VMBusHostError.tooManyChannels(limit: 2)) {
            try small.host.register(offer: ChannelOffer(interfaceType: DeviceClass.shutdown, interfaceInstance: .zero), handler: RecordingVSP())
        }
    }

    @Test func gpadlCompletesOnlyAfterItsLastBody() throws {
        let bed = try VMBusTestBed()
        let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.network, interfaceInstance: netInstance), handler: RecordingVSP())
        _ = try bed.connect()
        _ = try bed.requestOffers()
        // 64 pages: 26 PFNs in the header, 28 in the first body, 10 in the second.
        let pfns = (0..<UInt64(64)).map { (ringBase >> 12) + $0 }
        let messages = VMBusTestBed.gpadlMessages(relid: channel.relid, gpadl: 0xE1E10,
                                                  ranges: [GPARange(byteCount: 64 * 4096, byteOffset: 0, pfns: pfns)])
        #expect(messages.count == 3)
        for message in messages.dropLast() {
            #expect(bed.post(message) == .success)
            #expect(try bed.replies().isEmpty)
        }
        #expect(bed.post(messages[2]) == .success)
        #expect(try bed.replies() == [.gpadlCreated(GPADLCreated(childRelid: channel.relid, gpadl: 0xE1E10, creationStatus: 0))])
        #expect(bed.host.gpadlUsage.count == 1)
    }

    @Test func gpadlWithSeveralRangesAndOffsets() throws {
        let bed = try VMBusTestBed()
        let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: scsiInstance), handler: RecordingVSP())
        _ = try bed.connect()
        _ = try bed.requestOffers()
        let ranges = [GPARange(byteCount: 100, byteOffset: 4000, pfns: [0x200, 0x201]),
                      GPARange(byteCount: 3 * 4096, byteOffset: 0, pfns: [0x300, 0x302, 0x301])]
        for message in VMBusTestBed.gpadlMessages(relid: channel.relid, gpadl: 7, ranges: ranges) { bed.post(message) }
        #expect(try bed.replies() == [.gpadlCreated(GPADLCreated(childRelid: channel.relid, gpadl: 7, creationStatus: 0))])
    }

    @Test func fullChannelLifecycle() throws {
        let bed = try VMBusTestBed()
        let vsp = RecordingVSP()
        let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: scsiInstance), handler: vsp)
        _ = try bed.connect()
        _ = try bed.requestOffers()
        let rings = try bed.ringPages(base: ringBase, outPages: 3, inPages: 3)
        #expect(try bed.createGPADL(relid: channel.relid, gpadl: 0xE1E10, pfns: rings.pfns)
            == [.gpadlCreated(GPADLCreated(childRelid: channel.relid, gpadl: 0xE1E10, creationStatus: 0))])

        // Open.
        let userData: [UInt8] = Array(repeating: 0x5A, count: 120)
        bed.post(.openChannel(OpenChannel(childRelid: channel.relid, openID: 77, ringBufferGPADL: 0xE1E10, targetVP: 1,
                                          downstreamRingBufferPageOffset: 3, userData: userData)))
        #expect(try bed.replies() == [.openChannelResult(OpenChannelResult(childRelid: channel.relid, openID: 77, status: 0))])
        #expect(vsp.snapshot.opened == [userData])
        #expect(channel.isOpen)
        // The host declares pending_send_sz support on its ring.
        #expect(try rings.toGuest.get(RingControlPage.featureBitsOffset) & 1 == 1)

        // Guest to host: a packet, then the guest's HvSignalEvent wakes the VSP.
        let sent = try rings.toHost.write(type: 6, flags: 1, transactionID: 42, body: [1, 2, 3, 4, 5])
        #expect(sent.written && sent.signal)
        #expect(bed.host.handleSignalEvent(connectionID: channel.connectionID) == .success)
        #expect(vsp.snapshot.signalled == 1)
        let packet = try #require(try channel.readPacket())
        #expect(packet.kind == .inBand && packet.transactionID == 42 && packet.completionRequested)
        #expect(Array(packet.payload.prefix(5)) == [1, 2, 3, 4, 5] && packet.payload.count == 8)
        #expect(try channel.readPacket() == nil)

        // Host to guest: the completion goes into the guest's ring and raises its event flag.
        #expect(try channel.writeCompletion([9, 9], transactionID: 42) == .written(signalReader: true))
        #expect(bed.signals.take() == [SignalRecorder.Signal(vp: 1, sint: 2, flag: channel.relid)])
        let reply = try #require(try rings.toGuest.read())
        #expect(reply.descriptor.type == 11 && reply.descriptor.transactionID == 42 && Array(reply.body.prefix(2)) == [9, 9])

        // Teardown of the ring GPADL is refused while the channel is open...
        bed.post(.gpadlTeardown(GPADLTeardown(childRelid: channel.relid, gpadl: 0xE1E10)))
        #expect(try bed.replies().isEmpty)
        #expect(bed.host.gpadlUsage.count == 1)

        // ...and allowed after CLOSECHANNEL.
        bed.post(.closeChannel(CloseChannel(childRelid: channel.relid)))
        #expect(try bed.replies().isEmpty)
        #expect(vsp.snapshot.closed == 1 && !channel.isOpen)
        #expect(throws: ChannelError.notOpen) { try channel.readPacket() }
        #expect(bed.host.handleSignalEvent(connectionID: channel.connectionID) == .invalidConnectionID)
        bed.post(.gpadlTeardown(GPADLTeardown(childRelid: channel.relid, gpadl: 0xE1E10)))
        #expect(try bed.replies() == [.gpadlTorndown(GPADLTorndown(gpadl: 0xE1E10))])
        #expect(bed.host.gpadlUsage.count == 0 && bed.host.gpadlUsage.words == 0)

        // Unload answers and leaves the host disconnected.
        bed.post(.unload)
        #expect(try bed.replies() == [.unloadResponse])
        #expect(bed.host.negotiatedVersion == nil)
        bed.post(.requestOffers)
        #expect(try bed.replies().isEmpty)
    }

    @Test func unloadClosesOpenChannelsAndDropsGPADLs() throws {
        let bed = try VMBusTestBed()
        let vsp = RecordingVSP()
        let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: scsiInstance), handler: vsp)
        try openChannel(bed, channel)
        _ = try bed.createGPADL(relid: channel.relid, gpadl: 99, pfns: [0x400, 0x401])
        #expect(bed.host.gpadlUsage.count == 2)
        bed.post(.unload)
        #expect(try bed.replies() == [.unloadResponse])
        #expect(vsp.snapshot.closed == 1 && !channel.isOpen)
        #expect(bed.host.gpadlUsage.count == 0)
        // The guest may connect again and sees the same channel offered.
        _ = try bed.connect()
        #expect(try bed.requestOffers().map(\.childRelid) == [channel.relid])
    }

    @Test func reconnectWithoutUnloadResetsTheConnection() throws {
        let bed = try VMBusTestBed()
        let vsp = RecordingVSP()
        let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: scsiInstance), handler: vsp)
        try openChannel(bed, channel)
        // A kexec'd kernel starts over with INITIATE_CONTACT.
        #expect(try bed.connect().versionSupported == 1)
        #expect(vsp.snapshot.closed == 1 && bed.host.gpadlUsage.count == 0)
        #expect(try bed.requestOffers().count == 1)
    }

    @Test func rescindOnRemovalKeepsTheRelidUntilReleased() throws {
        let bed = try VMBusTestBed()
        let vsp = RecordingVSP()
        let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: scsiInstance), handler: vsp)
        try openChannel(bed, channel)
        bed.host.unregister(channel)
        #expect(vsp.snapshot.closed == 1)
        #expect(try bed.replies() == [.rescindChannelOffer(RescindChannelOffer(childRelid: channel.relid))])
        // Until RELID_RELEASED the instance (and relid) stay taken.
        #expect(throws: VMBusHostError.self) {
            try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: scsiInstance), handler: vsp)
        }
        // The guest closes its side and tears its GPADL down, then releases the relid.
        bed.post(.gpadlTeardown(GPADLTeardown(childRelid: channel.relid, gpadl: 0xE1E10)))
        #expect(try bed.replies() == [.gpadlTorndown(GPADLTorndown(gpadl: 0xE1E10))])
        bed.post(.relidReleased(RelidReleased(childRelid: channel.relid)))
        #expect(try bed.replies().isEmpty)
        let again = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: scsiInstance), handler: vsp)
        #expect(again.relid == channel.relid)
        guard case .offerChannel(let offer)? = try bed.replies().first else { throw TestFailure("re-registered device not offered") }
        #expect(offer.childRelid == again.relid)
    }

    @Test func removalBeforeTheGuestSawTheOfferNeedsNoRescind() throws {
        let bed = try VMBusTestBed()
        let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.kvp, interfaceInstance: .zero), handler: RecordingVSP())
        bed.host.unregister(channel)
        _ = try bed.connect()
        #expect(try bed.requestOffers().isEmpty)
    }

    @Test func modifyChannelRetargetsInterrupts() throws {
        let bed = try VMBusTestBed(vpCount: 4)
        let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: scsiInstance), handler: RecordingVSP())
        try openChannel(bed, channel)
        bed.post(.modifyChannel(ModifyChannel(childRelid: channel.relid, targetVP: 3)))
        #expect(try bed.replies() == [.modifyChannelResponse(ModifyChannelResponse(childRelid: channel.relid, status: 0))])
        channel.signalGuest()
        #expect(bed.signals.take() == [SignalRecorder.Signal(vp: 3, sint: 2, flag: channel.relid)])
        bed.post(.modifyChannel(ModifyChannel(childRelid: channel.relid, targetVP: 4)))
        #expect(try bed.replies() == [.modifyChannelResponse(ModifyChannelResponse(childRelid: channel.relid, status: ChannelStatus.unsuccessful))])
    }

    @Test func aRefusingVSPFailsTheOpen() throws {
        let bed = try VMBusTestBed()
        let channel = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.scsi, interfaceInstance: scsiInstance),
                                            handler: RecordingVSP(acceptOpen: false))
        _ = try bed.connect()
        _ = try bed.requestOffers()
        let rings = try bed.ringPages(base: ringBase, outPages: 2, inPages: 2)
        _ = try bed.createGPADL(relid: channel.relid, gpadl: 1, pfns: rings.pfns)
        bed.post(.openChannel(OpenChannel(childRelid: channel.relid, openID: 1, ringBufferGPADL: 1, targetVP: 0, downstreamRingBufferPageOffset: 2)))
        #expect(try bed.replies() == [.openChannelResult(OpenChannelResult(childRelid: channel.relid, openID: 1, status: ChannelStatus.unsuccessful))])
        #expect(!channel.isOpen)
        // The GPADL is not held by a ring: teardown works.
        bed.post(.gpadlTeardown(GPADLTeardown(childRelid: channel.relid, gpadl: 1)))
        #expect(try bed.replies() == [.gpadlTorndown(GPADLTorndown(gpadl: 1))])
    }

    @Test func hypercallLevelChecks() throws {
        let bed = try VMBusTestBed()
        let request = ChannelMessage.requestOffers.encode()
        #expect(bed.host.handlePostMessage(connectionID: 2, messageType: 1, payload: request, vp: 0) == .invalidConnectionID)
        #expect(bed.host.handlePostMessage(connectionID: 1, messageType: 2, payload: request, vp: 0) == .invalidParameter)
        #expect(bed.host.handlePostMessage(connectionID: 1, messageType: 1, payload: [UInt8](repeating: 0, count: 241), vp: 0) == .invalidParameter)
        // Reserved connection-id bits are ignored.
        #expect(bed.host.handlePostMessage(connectionID: 0xFF00_0001, messageType: 1, payload: request, vp: 0) == .success)
        #expect(bed.host.handleSignalEvent(connectionID: 0x2001) == .invalidConnectionID)
    }

    @Test func aGuestThatNeverFreesItsSlotGetsInsufficientBuffers() throws {
        let bed = try VMBusTestBed()
        _ = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.kvp, interfaceInstance: .zero), handler: RecordingVSP())
        _ = try bed.connect()
        bed.messages.pending.withLock { $0 = bed.limits.maxPendingMessages }
        #expect(bed.post(.requestOffers) == .insufficientBuffers)
        #expect(bed.contact(.win10_5_3) == .insufficientBuffers)
        #expect(try bed.replies().isEmpty)
        // Not processed: the retry after the guest's EOM works.
        bed.messages.pending.withLock { $0 = 0 }
        #expect(try bed.requestOffers().count == 1)
    }

    @Test func outgoingMessagesOfEveryKindFitTheSlot() throws {
        // The host only ever posts these; each must decode back to what was meant.
        let bed = try VMBusTestBed()
        _ = try bed.host.register(offer: ChannelOffer(interfaceType: DeviceClass.kvp, interfaceInstance: .zero,
                                                      userDefined: [UInt8](repeating: 0xFF, count: 120)), handler: RecordingVSP())
        _ = try bed.connect()
        let offers = try bed.requestOffers()
        #expect(offers.first?.userDefined == [UInt8](repeating: 0xFF, count: 120))
    }
}

/// Connects, requests offers and opens `channel` on a 2+2-page ring at `ringBase` (GPADL 0xE1E10).
@discardableResult
func openChannel(_ bed: VMBusTestBed, _ channel: VMBusChannel, targetVP: UInt32 = 0) throws -> (toHost: GuestRing, toGuest: GuestRing) {
    _ = try bed.connect()
    _ = try bed.requestOffers()
    let rings = try bed.ringPages(base: ringBase, outPages: 2, inPages: 2)
    _ = try bed.createGPADL(relid: channel.relid, gpadl: 0xE1E10, pfns: rings.pfns)
    bed.post(.openChannel(OpenChannel(childRelid: channel.relid, openID: 1, ringBufferGPADL: 0xE1E10, targetVP: targetVP,
                                      downstreamRingBufferPageOffset: 2)))
    guard try bed.replies() == [.openChannelResult(OpenChannelResult(childRelid: channel.relid, openID: 1, status: 0))] else {
        throw TestFailure("open failed")
    }
    return (rings.toHost, rings.toGuest)
}
