import VeneerPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// A test VSP: every in-band packet the guest writes on its channel comes back as an in-band
/// packet with the same transaction id and payload. It proves the VMBus path end to end (offer,
/// GPADL, open, rings both ways, signalling) and is the peer of bench/vmbus.
///
/// Optionally it owns an in-kernel doorbell port (`doorbell_port`): guest writes there are
/// absorbed by an ioeventfd, the baseline HvSignalEvent is compared with.
final class VMBusEcho: VeneerDevice {
    static let interfaceType = "e6cf4b56-4cfc-4b3c-9b5d-5e2f0e6a3b21"

    let host: HostServices
    let channel: UInt32
    let doorbell: Int32?
    /// A packet read but not yet echoed because the guest's ring was full.
    var held: HostServices.Packet?
    var echoed: UInt64 = 0
    var doorbellRings: UInt64 = 0
    var open = false

    init(host: HostServices, instance: String, doorbellPort: UInt16?) throws(PluginError) {
        self.host = host
        channel = try host.offerChannel(interfaceType: Self.interfaceType, interfaceInstance: instance)
        if let port = doorbellPort {
            let fd = try host.addDoorbell(port: port, length: 4)
            do { try host.watch(fd: fd, events: .readable, token: 1) } catch {
                close(fd)
                throw error
            }
            doorbell = fd
        } else {
            doorbell = nil
        }
    }

    deinit {
        if let doorbell {
            host.unwatch(fd: doorbell)
            close(doorbell)
        }
    }

    func reset() {
        held = nil
        echoed = 0
        doorbellRings = 0
        open = false
    }

    func io(_ access: IOAccess, data: inout UInt64) {}

    func fdReady(token: UInt64, events: FDEvents) {
        guard let doorbell else { return }
        var count: UInt64 = 0
        if read(doorbell, &count, 8) == 8 { doorbellRings &+= count }
    }

    func channelOpened(_ channel: UInt32, userData: [UInt8]) {
        open = true
        held = nil
        pump()
    }

    func channelSignalled(_ channel: UInt32) { pump() }

    func channelClosed(_ channel: UInt32) {
        open = false
        held = nil
    }

    /// Echoes until the guest's ring is empty or ours is full.
    private func pump() {
        guard open else { return }
        while true {
            let packet: HostServices.Packet
            if let pending = held {
                packet = pending
            } else {
                do {
                    guard let next = try host.readPacket(channel: channel) else { return }
                    packet = next
                } catch {
                    host.log(.warning, "channel unusable until the guest reopens it: \(error)")
                    open = false
                    return
                }
            }
            guard packet.type == 6 else {        // only in-band packets are echoed
                held = nil
                continue
            }
            switch host.writePacket(channel: channel, transactionID: packet.transactionID, payload: packet.payload) {
            case .written:
                held = nil
                echoed &+= 1
            case .full:
                held = packet
                return
            case .failed(let why):
                host.log(.warning, "echo failed: \(why)")
                held = nil
                return
            }
        }
    }

    func save(to state: inout StateWriter) {
        state.write(echoed)
        state.write(doorbellRings)
        state.write(held != nil)
        if let held {
            state.write(held.transactionID)
            state.write(bytes: held.payload)
        }
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("unknown state version \(version)") }
        let echoed: UInt64 = try state.read()
        let rings: UInt64 = try state.read()
        var held: HostServices.Packet?
        if try state.readBool() {
            let id: UInt64 = try state.read()
            let payload = try state.readBytes(maxCount: 1 << 20)
            held = HostServices.Packet(type: 6, flags: 0, transactionID: id, header: [], payload: payload)
        }
        try state.finish()
        self.echoed = echoed
        doorbellRings = rings
        self.held = held
    }

    static let definition = PluginDefinition(
        name: "vmbus-echo",
        version: "1.0.0",
        summary: "test VMBus device: echoes every in-band packet back to the guest",
        kind: .synthetic,
        parameters: [
            ParameterSpec("instance", .string, default: "5e1c0e5a-4f3d-4a8b-9c1e-0d2b3a4c5d6e",
                          doc: "the channel's instance GUID"),
            ParameterSpec("doorbell_port", .int(min: 0, max: 0xfffc), default: "0",
                          doc: "a port whose 4-byte writes an in-kernel ioeventfd absorbs (0: none); a benchmark baseline"),
        ]
    ) { host, params, _ throws(PluginError) in
        let port = params.int("doorbell_port")
        return try VMBusEcho(host: host, instance: params.string("instance"), doorbellPort: port == 0 ? nil : UInt16(port))
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: VMBusEcho.definition) }
