import VMBusProtocol

/// Registration, OPENCHANNEL, CLOSECHANNEL, RELID_RELEASED, MODIFYCHANNEL.
extension VMBusState {
    mutating func register(_ offer: ChannelOffer, _ handler: any VMBusChannelHandler,
                           _ env: VMBusEnvironment) -> Result<VMBusChannel, VMBusHostError> {
        guard offer.userDefined.count <= ChannelMessageLimits.userDefinedSize else {
            return .failure(.userDefinedTooLong(offer.userDefined.count))
        }
        // Includes rescinded channels the guest has not released: a re-offer before then would
        // meet the old channel in the guest.
        guard !channels.values.contains(where: {
            $0.channel.offer.interfaceType == offer.interfaceType && $0.channel.offer.interfaceInstance == offer.interfaceInstance
                && $0.channel.offer.subChannelIndex == offer.subChannelIndex
        }) else { return .failure(.duplicateInstance(offer.interfaceInstance)) }
        guard channels.count < env.limits.maxChannels,
              let relid = (1...VMBusLimits.maxRelid).first(where: { channels[$0] == nil })
        else { return .failure(.tooManyChannels(limit: env.limits.maxChannels)) }

        let channel = VMBusChannel(offer: offer, relid: relid, connectionID: ChannelRecord.connectionID(relid: relid),
                                   signaller: env.signaller, diagnostics: env.diagnostics)
        var record = ChannelRecord(channel: channel, handler: handler)
        if connection?.offersSent == true {
            post(record.offerMessage.encode(), env)
            record.offered = true
        }
        channels[relid] = record
        return .success(channel)
    }

    mutating func unregister(_ channel: VMBusChannel, _ env: VMBusEnvironment) {
        let relid = channel.relid
        guard let existing = channels[relid], existing.channel === channel, existing.phase != .rescinded else { return }
        if existing.primary == nil { withdrawSubchannels(of: relid, env) }
        withdraw(relid, env)
    }

    /// Takes a channel from the VSP: closes it if open (the VSP hears `channelClosed` first),
    /// retires it, and rescinds the offer if the guest saw it (the relid stays reserved until the
    /// guest's RELID_RELEASED), else forgets it at once.
    mutating func withdraw(_ relid: UInt32, _ env: VMBusEnvironment) {
        guard let existing = channels[relid], existing.phase != .rescinded else { return }
        if case .open = existing.phase { closeOpenChannel(relid) }
        retire(existing)
        guard var record = channels[relid], record.offered, !record.releasedByGuest else {
            channels[relid] = nil
            removeGPADLs(ownedBy: relid)
            return
        }
        record.phase = .rescinded
        channels[relid] = record
        post(RescindChannelOffer(childRelid: relid).encode(), env)
    }

    /// Sub-channels live only while their primary is open: closing or removing the primary
    /// withdraws them, so a guest that reopens it (or reconnects) is offered the primary alone.
    mutating func withdrawSubchannels(of primary: UInt32, _ env: VMBusEnvironment) {
        for relid in subchannels(of: primary) { withdraw(relid, env) }
    }

    /// The live (not rescinded) sub-channels of `primary`, by relid.
    func subchannels(of primary: UInt32) -> [UInt32] {
        channels.filter { $0.value.primary == primary && $0.value.phase != .rescinded }.keys.sorted()
    }

    func retire(_ record: ChannelRecord) {
        record.channel.retire()
        record.handler.channelRetired(record.channel)
    }

    /// Offers `handlers.count` sub-channels of the open primary `primary`: same type and
    /// instance, sub_channel_index continuing after every index the guest may still know (the
    /// guest matches a sub-channel to its primary by type and instance, and tells it apart by a
    /// non-zero index), relids from the common pool. All or nothing.
    mutating func registerSubchannels(of primary: VMBusChannel, handlers: [any VMBusChannelHandler],
                                      _ env: VMBusEnvironment) -> Result<[VMBusChannel], VMBusHostError> {
        let relid = primary.relid
        guard let record = channels[relid], record.channel === primary, record.primary == nil, case .open = record.phase else {
            return .failure(.notAnOpenPrimary(relid))
        }
        guard !handlers.isEmpty else { return .success([]) }
        let live = subchannels(of: relid).count
        guard live + handlers.count <= VMBusLimits.maxSubchannels else {
            return .failure(.tooManySubchannels(primary: relid, limit: VMBusLimits.maxSubchannels))
        }
        let offer = primary.offer
        let known = channels.values.filter {
            $0.channel.offer.interfaceType == offer.interfaceType && $0.channel.offer.interfaceInstance == offer.interfaceInstance
        }
        let first = Int(known.map(\.channel.offer.subChannelIndex).max() ?? 0) + 1
        guard first + handlers.count - 1 <= Int(UInt16.max) else {
            return .failure(.tooManySubchannels(primary: relid, limit: VMBusLimits.maxSubchannels))
        }
        let taken = Set(channels.keys)
        let relids = Array((1...VMBusLimits.maxRelid).lazy.filter { !taken.contains($0) }.prefix(handlers.count))
        guard channels.count + handlers.count <= env.limits.maxChannels, relids.count == handlers.count else {
            return .failure(.tooManyChannels(limit: env.limits.maxChannels))
        }
        var created: [VMBusChannel] = []
        for (i, (handler, subRelid)) in zip(handlers, relids).enumerated() {
            var subOffer = offer
            subOffer.subChannelIndex = UInt16(first + i)
            let channel = VMBusChannel(offer: subOffer, relid: subRelid, connectionID: ChannelRecord.connectionID(relid: subRelid),
                                       signaller: env.signaller, diagnostics: env.diagnostics)
            var sub = ChannelRecord(channel: channel, handler: handler, primary: relid)
            if connection?.offersSent == true {
                post(sub.offerMessage.encode(), env)
                sub.offered = true
            }
            channels[subRelid] = sub
            created.append(channel)
        }
        return .success(created)
    }

    /// The pages of the complete GPADL `id` that the guest created for `channel` or, when it is a
    /// sub-channel, for its primary (netvsc's buffers belong to the primary), as segments.
    func gpadlSegments(_ channel: VMBusChannel, gpadl id: UInt32, _ env: VMBusEnvironment) -> [VMBusSegment]? {
        guard let record = channels[channel.relid], record.channel === channel, record.phase != .rescinded,
              let gpadl = gpadls[id], let ranges = gpadl.ranges,
              gpadl.owner == channel.relid || (record.primary != nil && gpadl.owner == record.primary)
        else { return nil }
        return VMBusSegment.segments(of: ranges, memory: env.memory)
    }

    mutating func openChannel(_ request: OpenChannel, _ env: VMBusEnvironment) {
        do throws(VMBusHostFailure) {
            try open(request, env)
            post(OpenChannelResult(childRelid: request.childRelid, openID: request.openID, status: ChannelStatus.success).encode(), env)
        } catch {
            refuse("OPENCHANNEL for relid \(request.childRelid): \(error.reason)", env)
            post(OpenChannelResult(childRelid: request.childRelid, openID: request.openID, status: ChannelStatus.unsuccessful).encode(), env)
        }
    }

    private mutating func open(_ request: OpenChannel, _ env: VMBusEnvironment) throws(VMBusHostFailure) {
        let relid = request.childRelid
        guard let connection, var record = channels[relid], record.offered, !record.releasedByGuest else {
            throw .init("no such channel on offer")
        }
        guard record.phase == .closed else { throw .init(record.phase == .rescinded ? "channel was rescinded" : "channel is already open") }
        guard var gpadl = gpadls[request.ringBufferGPADL], gpadl.owner == relid, gpadl.isComplete, !gpadl.usedByRing else {
            throw .init("ring GPADL \(request.ringBufferGPADL) is not a complete, unused GPADL of this channel")
        }
        guard let pages = gpadl.ringPages else { throw .init("ring GPADL is not whole pages in one range") }
        let split = Int(request.downstreamRingBufferPageOffset)
        // Each ring: a control page and at least one data page.
        guard split >= 2, split <= pages.count - 2,
              let incomingLayout = RingLayout(pfns: pages[..<split]), let outgoingLayout = RingLayout(pfns: pages[split...])
        else { throw .init("downstream ring offset \(split) of a \(pages.count)-page GPADL leaves a ring without data pages") }
        let noInterrupts: UInt32 = 0xFFFF_FFFF
        guard request.targetVP == noInterrupts || request.targetVP < env.vpCount else {
            throw .init("target VP \(request.targetVP) does not exist")
        }
        let rings: VMBusChannel.OpenState
        do throws(RingError) {
            rings = VMBusChannel.OpenState(
                incoming: try RingReader(layout: incomingLayout, memory: env.memory, maxGPADirectRanges: env.limits.maxGPADirectRanges),
                outgoing: try RingWriter(layout: outgoingLayout, memory: env.memory),
                targetVP: request.targetVP == noInterrupts ? nil : request.targetVP, sint: connection.sint)
        } catch {
            throw .init("\(error)")
        }
        record.channel.attach(rings)
        guard record.handler.channelOpened(record.channel, userData: request.userData) else {
            record.channel.detach()
            throw .init("the device refused the open")
        }
        gpadl.usedByRing = true
        gpadls[gpadl.id] = gpadl
        record.phase = .open(ringGPADL: gpadl.id)
        channels[relid] = record
    }

    mutating func closeChannel(_ request: CloseChannel, _ env: VMBusEnvironment) {
        guard case .open = channels[request.childRelid]?.phase else {
            drop("CLOSECHANNEL for relid \(request.childRelid), which is not open", env)
            return
        }
        if channels[request.childRelid]?.primary == nil { withdrawSubchannels(of: request.childRelid, env) }
        closeOpenChannel(request.childRelid)
    }

    /// Detaches the rings, frees the ring GPADL for teardown, and tells the VSP.
    mutating func closeOpenChannel(_ relid: UInt32) {
        guard var record = channels[relid], case .open(let ringGPADL) = record.phase else { return }
        record.channel.detach()
        gpadls[ringGPADL]?.usedByRing = false
        record.phase = .closed
        channels[relid] = record
        record.handler.channelClosed(record.channel)
    }

    mutating func relidReleased(_ request: RelidReleased, _ env: VMBusEnvironment) {
        let relid = request.childRelid
        guard var record = channels[relid], record.offered else {
            drop("RELID_RELEASED for relid \(relid), which is not on offer", env)
            return
        }
        switch record.phase {
        case .rescinded:
            channels[relid] = nil
        case .closed:
            // The guest gave up a live channel; it is offered again on the next connection.
            record.releasedByGuest = true
            channels[relid] = record
        case .open:
            drop("RELID_RELEASED for open relid \(relid)", env)
            return
        }
        removeGPADLs(ownedBy: relid)
    }

    mutating func modifyChannel(_ request: ModifyChannel, _ env: VMBusEnvironment) {
        guard let connection, connection.version >= .win10_4_1 else {
            drop("MODIFYCHANNEL before protocol 4.1", env)
            return
        }
        // Only 5.3 and later guests wait for an answer.
        let answer = connection.version >= .win10_5_3
        guard let record = channels[request.childRelid], case .open = record.phase, request.targetVP < env.vpCount else {
            if answer {
                refuse("MODIFYCHANNEL of relid \(request.childRelid) to VP \(request.targetVP)", env)
                post(ModifyChannelResponse(childRelid: request.childRelid, status: ChannelStatus.unsuccessful).encode(), env)
            } else {
                drop("MODIFYCHANNEL of relid \(request.childRelid) to VP \(request.targetVP)", env)
            }
            return
        }
        record.channel.retarget(vp: request.targetVP)
        if answer { post(ModifyChannelResponse(childRelid: request.childRelid, status: ChannelStatus.success).encode(), env) }
    }
}
