import VMBusProtocol

/// Forwards one VMBus channel's events to the plugin that offered it.
///
/// Opened and closed arrive under the VMBus host's lock (see `VMBusChannelHandler`), so they are
/// handed to the event loop and reach the plugin on its serialised context a moment later;
/// signalled arrives without that lock (on the event thread for the in-kernel signal path, on a
/// vCPU for the rare user-space one) and goes straight in.
final class PluginChannelHandler: VMBusChannelHandler, @unchecked Sendable {
    // @unchecked: `device` is weak and set once at creation; the event loop is Sendable.
    private weak var device: PluginDevice?
    private let events: EventLoop

    init(device: PluginDevice, events: EventLoop) {
        self.device = device
        self.events = events
    }

    func channelOpened(_ channel: VMBusChannel, userData: [UInt8]) -> Bool {
        let id = channel.relid
        events.enqueue { [weak device] in device?.vmbusOpened(channel: id, userData: userData) }
        return true
    }

    func channelSignalled(_ channel: VMBusChannel) {
        device?.vmbusSignalled(channel: channel.relid)
    }

    func channelClosed(_ channel: VMBusChannel) {
        let id = channel.relid
        events.enqueue { [weak device] in device?.vmbusClosed(channel: id) }
    }
}

extension VMBusPacket {
    /// The type-specific header a plugin sees before the payload: for GPA direct, the range list
    /// as on the wire ({u32 reserved; u32 rangecount; ranges}).
    var pluginHeader: [UInt8] {
        guard case .gpaDirect(let ranges) = kind else { return [] }
        var bytes = [UInt8](repeating: 0, count: 8)
        withUnsafeBytes(of: UInt32(ranges.count).littleEndian) { bytes.replaceSubrange(4..<8, with: $0) }
        for word in ranges.flatMap(\.words) { withUnsafeBytes(of: word.littleEndian) { bytes.append(contentsOf: $0) } }
        return bytes
    }
}
