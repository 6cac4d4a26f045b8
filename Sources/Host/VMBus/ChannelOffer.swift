import VMBusProtocol

/// What a VSP offers the guest: the OFFERCHANNEL fields that are the device's to choose. The
/// host adds the relid, the signalling connection id and the interrupt fields.
public struct ChannelOffer: Sendable, Equatable {
    /// The device class the guest matches drivers on (see `DeviceClass`).
    public var interfaceType: GUID
    /// This device instance; unique per interface type in one VM.
    public var interfaceInstance: GUID
    public var channelFlags: UInt16
    public var mmioMegabytes: UInt16
    /// At most 120 bytes; zero-padded on the wire.
    public var userDefined: [UInt8]
    /// 0 for a primary channel.
    public var subChannelIndex: UInt16

    public init(interfaceType: GUID, interfaceInstance: GUID, channelFlags: UInt16 = 0, mmioMegabytes: UInt16 = 0,
                userDefined: [UInt8] = [], subChannelIndex: UInt16 = 0) {
        self.interfaceType = interfaceType
        self.interfaceInstance = interfaceInstance
        self.channelFlags = channelFlags
        self.mmioMegabytes = mmioMegabytes
        self.userDefined = userDefined
        self.subChannelIndex = subChannelIndex
    }
}

/// Channel events for the VSP that registered the channel.
///
/// `channelOpened` and `channelClosed` run with the VMBus host's lock held, in order with all
/// channel-management processing: they may use the channel (read, write, signal) but must not call
/// `VMBusHost` (register, unregister, handle...), which would deadlock. `channelSignalled` runs
/// without that lock on the vCPU that signalled: keep it short (wake a worker).
public protocol VMBusChannelHandler: AnyObject, Sendable {
    /// The guest opened the channel; its rings are attached. Return false to refuse (the guest
    /// sees a failed open and the rings are detached again).
    func channelOpened(_ channel: VMBusChannel, userData: [UInt8]) -> Bool
    /// The guest signalled the channel: new packets, or space freed after the host reported the
    /// ring full. May arrive after `channelClosed` if the two race; channel calls then fail with
    /// `notOpen`.
    func channelSignalled(_ channel: VMBusChannel)
    /// The channel closed (guest CLOSECHANNEL, UNLOAD, reconnect, or the VSP's own unregister).
    func channelClosed(_ channel: VMBusChannel)
    /// The channel stopped being the VSP's: rescinded by `unregister`, withdrawn with its
    /// primary (a sub-channel), or dropped when the guest unloaded or reconnected (a
    /// sub-channel). Any `channelClosed` came first. Runs under the host's lock, like
    /// `channelClosed`; the default does nothing.
    func channelRetired(_ channel: VMBusChannel)
}

extension VMBusChannelHandler {
    public func channelRetired(_ channel: VMBusChannel) {}
}
