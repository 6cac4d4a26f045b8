import VeneerPluginKit

/// A test device for the Hyper-V connections below VMBus (ABI 1.4): it owns one message and one
/// event connection, and a guest drives it by posting commands, so the SynIC's message queueing
/// and EOM, event flags and cross-VP delivery are tested from inside a guest.
///
/// Commands are HvPostMessage payloads to `message_connection`, little-endian u32 words:
///   [1, vp, sint, tag, count]  post `count` (1-64) messages of type 0x7E57 to `sint` of `vp`,
///                              each {u32 tag, u32 sequence 0.., u32 posting VP}
///   [2, vp, sint, flag]        set event flag `flag` of `sint` of `vp`
///   [3, vp, sint]              from now on, an HvSignalEvent to `event_connection` with flag f
///                              sets flag f of `sint` of `vp` (an event route)
/// A malformed command gets HV_STATUS_INVALID_PARAMETER; a post the target's full queue refuses
/// gets HV_STATUS_INSUFFICIENT_BUFFERS (the guest retries, as with VMBus).
final class HyperVTestDevice: VeneerDevice {
    static let replyType: UInt32 = 0x7E57
    static let maxBurst: UInt32 = 64

    struct Route: Equatable {
        var vp: UInt32
        var sint: UInt32
    }

    let host: HostServices
    let messageConnection: UInt32
    let eventConnection: UInt32
    var route: Route?
    var commands: UInt64 = 0
    var unroutedEvents: UInt64 = 0

    init(host: HostServices, messageConnection: UInt32, eventConnection: UInt32) throws(PluginError) {
        guard messageConnection != eventConnection else {
            throw PluginError("message_connection and event_connection are both \(messageConnection): give each its own id")
        }
        self.host = host
        self.messageConnection = messageConnection
        self.eventConnection = eventConnection
        try host.connectHyperV(.message, id: messageConnection)
        try host.connectHyperV(.event, id: eventConnection)
    }

    func reset() {
        route = nil
        commands = 0
        unroutedEvents = 0
    }

    func io(_ access: IOAccess, data: inout UInt64) {}

    func hyperVMessage(connection: UInt32, vp: UInt32, messageType: UInt32, payload: [UInt8]) -> HyperVStatus {
        let words = stride(from: 0, to: payload.count - payload.count % 4, by: 4).map { i in
            UInt32(payload[i]) | UInt32(payload[i + 1]) << 8 | UInt32(payload[i + 2]) << 16 | UInt32(payload[i + 3]) << 24
        }
        guard connection == messageConnection, let command = words.first else { return .invalidParameter }
        commands &+= 1
        switch (command, words.count) {
        case (1, 5...):
            let (target, sint, tag, count) = (words[1], words[2], words[3], words[4])
            guard (1...Self.maxBurst).contains(count) else { return .invalidParameter }
            for sequence in 0..<count {
                let body = [tag, sequence, vp].flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }
                switch host.postHyperVMessage(vp: target, sint: sint, messageType: Self.replyType, payload: body) {
                case .posted: continue
                case .queueFull: return .insufficientBuffers     // the guest drains its slot and retries
                case .refused: return .invalidParameter          // no such VP or SINT
                }
            }
            return .success
        case (2, 4...):
            do { try host.signalHyperVEvent(vp: words[1], sint: words[2], flag: words[3]) } catch { return .invalidParameter }
            return .success
        case (3, 3...):
            guard words[2] < 16 else { return .invalidParameter }
            route = Route(vp: words[1], sint: words[2])
            return .success
        default:
            return .invalidParameter
        }
    }

    func hyperVEvent(connection: UInt32, vp: UInt32, flag: UInt32) {
        guard connection == eventConnection, let route else {
            unroutedEvents &+= 1
            return
        }
        do { try host.signalHyperVEvent(vp: route.vp, sint: route.sint, flag: flag) } catch {
            host.log(.debug, "event flag \(flag) from VP \(vp) not routed: \(error)")
        }
    }

    func save(to state: inout StateWriter) {
        state.write(commands)
        state.write(unroutedEvents)
        state.write(route != nil)
        state.write(route?.vp ?? 0)
        state.write(route?.sint ?? 0)
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("unknown state version \(version)") }
        let commands: UInt64 = try state.read()
        let unrouted: UInt64 = try state.read()
        let routed = try state.readBool()
        let vp: UInt32 = try state.read()
        let sint: UInt32 = try state.read()
        guard sint < 16 else { throw StateError("event route to SINT \(sint)") }
        try state.finish()
        self.commands = commands
        unroutedEvents = unrouted
        route = routed ? Route(vp: vp, sint: sint) : nil
    }

    static let definition = PluginDefinition(
        name: "hv-testdev",
        version: "1.0.0",
        summary: "Hyper-V test device: guest commands post SynIC messages and set event flags on any VP",
        kind: .synthetic,
        parameters: [
            ParameterSpec("message_connection", .int(min: 0x1_0000, max: 0xFF_FFFF), default: "0x10001",
                          doc: "the connection id the guest posts commands to"),
            ParameterSpec("event_connection", .int(min: 0x1_0000, max: 0xFF_FFFF), default: "0x10002",
                          doc: "the connection id whose HvSignalEvent flags are routed (command 3)"),
        ]
    ) { host, params, _ throws(PluginError) in
        try HyperVTestDevice(host: host, messageConnection: UInt32(params.int("message_connection")),
                             eventConnection: UInt32(params.int("event_connection")))
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: HyperVTestDevice.definition) }
