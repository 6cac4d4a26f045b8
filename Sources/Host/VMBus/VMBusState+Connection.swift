import VMBusProtocol

/// Connecting, offering and disconnecting: INITIATE_CONTACT, REQUESTOFFERS, UNLOAD.
extension VMBusState {
    mutating func initiateContact(_ contact: InitiateContact, _ env: VMBusEnvironment) -> HypercallStatus {
        let version = contact.version
        // Before 3.0 replies always went to VP 0; before 5.0 always to SINT 2.
        let vp = version >= .win8_1 ? contact.targetVCPU : 0
        let sint = version >= .win10_5_0 ? contact.messageSINT : VMBusHost.messageSINT
        guard vp < env.vpCount, sint < 16 else {
            drop("INITIATE_CONTACT \(version) names VP \(vp) SINT \(sint), which does not exist", env)
            return .success
        }
        if env.messages.pendingMessageCount(vp: vp, sint: sint) >= env.limits.maxPendingMessages {
            return .insufficientBuffers
        }
        // A new contact replaces the old connection: the guest started over (kexec, crash kernel).
        if connection != nil { resetConnection(env) }

        let refusal: String? =
            if !VMBusHost.supportedVersions.contains(version) { "version \(version) is not supported" }
            else if sint != VMBusHost.messageSINT { "message SINT \(sint) requested, only \(VMBusHost.messageSINT) is served" }
            else if version >= .win10_5_1 && contact.messageVTL != 0 { "VTL \(contact.messageVTL) requested, only VTL 0 is served" }
            else { nil }
        if let refusal {
            // version_supported = 0: the guest tries its next older version.
            refuse("INITIATE_CONTACT: \(refusal)", env, level: .info)
            env.diagnostics.traffic.add(.messagesOut)
            env.messages.post(vp: vp, sint: sint, messageType: PostMessageInput.vmbusMessageType,
                              payload: VersionResponse(versionSupported: false).encode())
            return .success
        }
        connection = VMBusConnection(version: version, vp: vp, sint: sint)
        // From 5.0 the guest posts everything after this to the connection id given here.
        let connectionField = version >= .win10_5_0 ? VMBusHost.messageConnectionID : version.rawValue
        post(VersionResponse(versionSupported: true, messageConnectionID: connectionField).encode(), env)
        env.diagnostics.report(.connection, .info, "guest connected: VMBus \(version), messages to VP \(vp) SINT \(sint)")
        return .success
    }

    mutating func requestOffers(_ env: VMBusEnvironment) {
        guard var current = connection, !current.offersSent else {
            // Once per connection: bounds what one guest message can make the host queue.
            drop("REQUESTOFFERS repeated on one connection", env)
            return
        }
        for relid in channels.keys.sorted() {
            guard var record = channels[relid], record.phase != .rescinded else { continue }
            post(record.offerMessage.encode(), env)
            record.offered = true
            channels[relid] = record
        }
        post(ChannelMessage.allOffersDelivered.encode(), env)
        current.offersSent = true
        connection = current
    }

    mutating func unload(_ env: VMBusEnvironment) {
        guard let target = connection else { return }
        resetConnection(env)
        env.diagnostics.traffic.add(.messagesOut)
        env.messages.post(vp: target.vp, sint: target.sint, messageType: PostMessageInput.vmbusMessageType,
                          payload: ChannelMessage.unloadResponse.encode())
        env.diagnostics.report(.connection, .info, "guest unloaded VMBus")
    }

    /// Back to "no guest": every channel closed and un-offered, every GPADL gone, rescinded
    /// channels forgotten (the next connection never saw them).
    mutating func resetConnection(_ env: VMBusEnvironment) {
        // Sub-channels first: they go entirely (the next connection is offered primaries only).
        for relid in channels.keys.sorted() {
            guard let record = channels[relid], record.primary != nil else { continue }
            if case .open = record.phase { closeOpenChannel(relid) }
            if record.phase != .rescinded { retire(record) }
            channels[relid] = nil
        }
        for relid in channels.keys.sorted() {
            if case .open = channels[relid]?.phase { closeOpenChannel(relid) }
            guard var record = channels[relid] else { continue }
            if record.phase == .rescinded {
                channels[relid] = nil
                continue
            }
            record.offered = false
            record.releasedByGuest = false
            channels[relid] = record
        }
        gpadls = [:]
        gpadlBudget = 0
        connection = nil
    }
}

extension ChannelRecord {
    var offerMessage: OfferChannel {
        let offer = channel.offer
        return OfferChannel(
            interfaceType: offer.interfaceType, interfaceInstance: offer.interfaceInstance,
            channelFlags: offer.channelFlags, mmioMegabytes: offer.mmioMegabytes, userDefined: offer.userDefined,
            subChannelIndex: offer.subChannelIndex, childRelid: channel.relid,
            // No monitor pages: the guest signals with HvSignalEvent on connectionID.
            monitorID: 0, monitorAllocated: 0, isDedicatedInterrupt: 1, connectionID: channel.connectionID)
    }
}
