import VeneerPluginKit

/// A device whose VMBus channel is one integration-component endpoint. The channel's events and
/// the endpoint's own timers and posted work go to `endpoint`; what it makes of them (negotiation,
/// answers, timeouts, closing) goes to `handle(_:)`. Timers and posted work with other tokens are
/// the service's own.
public protocol ICDevice: VeneerDevice {
    var endpoint: ICEndpoint { get set }
    func handle(_ events: [ICEvent])
    func serviceTimerFired(token: UInt64)
    func serviceWorkPosted(token: UInt64)
}

extension ICDevice {
    public func serviceTimerFired(token: UInt64) {}
    public func serviceWorkPosted(token: UInt64) {}

    public func channelOpened(_ channel: UInt32, userData: [UInt8]) {
        guard channel == endpoint.channel else { return }
        handle(endpoint.opened())
    }

    public func channelSignalled(_ channel: UInt32) {
        guard channel == endpoint.channel else { return }
        handle(endpoint.signalled())
    }

    public func channelClosed(_ channel: UInt32) {
        guard channel == endpoint.channel else { return }
        handle(endpoint.closed())
    }

    public func timerFired(token: UInt64) {
        if let events = endpoint.timerFired(token: token) { return handle(events) }
        serviceTimerFired(token: token)
    }

    public func workPosted(token: UInt64) {
        if let events = endpoint.workPosted(token: token) { return handle(events) }
        serviceWorkPosted(token: token)
    }
}
