import VMBusProtocol

/// The guest's connection once INITIATE_CONTACT was accepted.
struct VMBusConnection {
    let version: VMBusVersion
    /// Where channel messages to the guest go.
    let vp: UInt32
    let sint: UInt8
    /// REQUESTOFFERS was answered; later registrations are offered immediately.
    var offersSent = false
}

/// One registered channel, from the host's point of view.
struct ChannelRecord {
    enum Phase: Equatable {
        case closed
        case open(ringGPADL: UInt32)
        /// The VSP is gone and the guest was told; waiting for RELID_RELEASED.
        case rescinded
    }

    let channel: VMBusChannel
    let handler: any VMBusChannelHandler
    /// The relid of the primary a sub-channel belongs to; nil for a primary.
    var primary: UInt32? = nil
    var phase: Phase = .closed
    /// OFFERCHANNEL went to the guest on the current connection.
    var offered = false
    /// The guest released the relid of a live channel; not usable until offered again.
    var releasedByGuest = false
}

/// Everything the channel-management protocol keeps between messages. Only `VMBusHost` touches it,
/// under its lock.
struct VMBusState {
    var connection: VMBusConnection?
    var channels: [UInt32: ChannelRecord] = [:]
    var gpadls: [UInt32: GPADL] = [:]
    /// Sum of `budget` over `gpadls`.
    var gpadlBudget = 0

    /// Logs why a guest message got no reply at all.
    func drop(_ reason: String, _ env: VMBusEnvironment) {
        env.diagnostics.report(.droppedMessage, .warning, "dropped guest message: \(reason)")
    }

    /// Logs why a guest request got an error status. `info` for refusals honest guests meet
    /// (a Linux guest first asks for a newer version than the host speaks).
    func refuse(_ reason: String, _ env: VMBusEnvironment, level: Logger.Level = .warning) {
        env.diagnostics.report(.refusedRequest, level, "refused guest request: \(reason)")
    }

    /// Queues a reply on the connection's message slot.
    func post(_ payload: [UInt8], _ env: VMBusEnvironment) {
        guard let connection else { return }
        env.diagnostics.debug("host -> VP \(connection.vp): \((try? ChannelMessage.decode(payload))?.summary ?? "\(payload.count) bytes")")
        env.diagnostics.traffic.add(.messagesOut)
        env.messages.post(vp: connection.vp, sint: connection.sint, messageType: PostMessageInput.vmbusMessageType, payload: payload)
    }

    /// The open channel a guest signal names, and its handler.
    func openChannel(connectionID: UInt32) -> (VMBusChannel, any VMBusChannelHandler)? {
        let relid = connectionID & 0xFFF
        guard connectionID == ChannelRecord.connectionID(relid: relid), let record = channels[relid],
              case .open = record.phase
        else { return nil }
        return (record.channel, record.handler)
    }

    /// Dispatches one decoded guest message. Returns the hypercall status: success unless the
    /// guest's message slot is backed up (then insufficient buffers, and the message is not
    /// processed: the guest posts it again).
    mutating func handle(_ message: ChannelMessage, _ env: VMBusEnvironment) -> HypercallStatus {
        env.diagnostics.debug("guest -> host: \(message.summary)")
        if case .initiateContact(let contact) = message {
            return initiateContact(contact, env)
        }
        guard let connection else {
            drop("\(message.type) before INITIATE_CONTACT", env)
            return .success
        }
        if env.messages.pendingMessageCount(vp: connection.vp, sint: connection.sint) >= env.limits.maxPendingMessages {
            return .insufficientBuffers
        }
        switch message {
        case .requestOffers: requestOffers(env)
        case .gpadlHeader(let header): gpadlHeader(header, env)
        case .gpadlBody(let body): gpadlBody(body, env)
        case .gpadlTeardown(let teardown): gpadlTeardown(teardown, env)
        case .openChannel(let open): openChannel(open, env)
        case .closeChannel(let close): closeChannel(close, env)
        case .relidReleased(let released): relidReleased(released, env)
        case .modifyChannel(let modify): modifyChannel(modify, env)
        case .unload: unload(env)
        case .initiateContact: break
        case .offerChannel, .rescindChannelOffer, .allOffersDelivered, .openChannelResult, .gpadlCreated,
             .gpadlTorndown, .versionResponse, .unloadResponse, .modifyChannelResponse:
            drop("host-to-guest message \(message.type) sent by the guest", env)
        }
        return .success
    }
}

extension ChannelRecord {
    /// The connection id a guest signals a channel on: relid, SINT 2 in bits 12-15, VTL 0.
    static func connectionID(relid: UInt32) -> UInt32 {
        relid | UInt32(VMBusHost.messageSINT) << 12
    }
}
