import NVSPProtocol
import RNDISProtocol
import Synchronization
import VeneerNet
import VeneerPluginKit

/// A synthetic network adapter: one VMBus offer (plus the sub-channels the guest asks for, one
/// per vCPU at most), attached to a switch port whose queue fds carry frames with virtio-net
/// headers.
final class NetVSPDevice: VeneerDevice, @unchecked Sendable {
    static let interfaceType = "f8615163-df3e-46c5-913f-f2d2f965ed0e"
    static let linkTimer: UInt64 = 1
    static let linkPollNanoseconds: UInt64 = 1_000_000_000

    let host: HostServices
    let name: String
    let nic: NIC
    let primary: UInt32
    let port: (any NetworkPort)?
    private let channels: ChannelTable
    private let receivers: [ReceiveQueue]
    private let vcpus = Atomic<Int>(1)
    private let macFixed: Bool

    init(host: HostServices, name: String, instance: String, configuration: NICConfiguration, queueFDs: [Int32],
         port: (any NetworkPort)?) throws(PluginError) {
        self.host = host
        self.name = name
        self.port = port
        macFixed = configuration.mac != nil
        let metrics = NetMetrics(host: host)
        let nic = NIC(configuration: configuration, queueFDs: queueFDs, metrics: metrics,
                      mac: configuration.mac ?? DefaultMAC.derive(vmName: "", device: name))
        self.nic = nic
        primary = try host.offerChannel(interfaceType: Self.interfaceType, interfaceInstance: instance)
        let channels = ChannelTable(primary: primary)
        self.channels = channels
        receivers = queueFDs.enumerated().map { index, fd in
            ReceiveQueue(index: index, fd: fd, nic: nic, host: host) { [host] channel, packet in
                channels.withSession(index: channel) { session in
                    host.writePackets(channel: session.channel, [packet]).written == 1
                } ?? false
            }
        }
    }

    deinit { port?.close() }

    /// Queues the guest may use: the configured cap, the vCPUs, and 64.
    var queueLimit: Int { max(1, min(nic.configuration.maxQueues, vcpus.load(ordering: .relaxed), 64)) }

    // MARK: Device

    func reset() {
        channels.clearSubChannels()
        channels.slots[0].session.withLock { session in
            session?.close()
            session = nil
        }
        nic.forgetGuest()
        receivers.forEach { $0.stop() }
    }

    func start() {
        learnMachine()
        host.armTimer(token: Self.linkTimer, deadline: host.now + Self.linkPollNanoseconds, period: Self.linkPollNanoseconds)
    }

    func stop() {
        host.cancelTimer(token: Self.linkTimer)
        receivers.forEach { $0.stop() }
    }

    /// vCPUs bound the sub-channels; the VM's name gives the default MAC. Both are machine facts,
    /// known once the machine is built.
    private func learnMachine() {
        if let bytes = try? host.machineFact(.vcpuCount), bytes.count >= 4 {
            vcpus.store(Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24), ordering: .relaxed)
        }
        if !macFixed, let bytes = try? host.machineFact(.vmName), !bytes.isEmpty {
            let mac = DefaultMAC.derive(vmName: String(decoding: bytes, as: UTF8.self), device: name)
            nic.state.withLock { $0.mac = mac }
        }
    }

    func io(_ access: IOAccess, data: inout UInt64) {}

    func channelOpened(_ channel: UInt32, userData: [UInt8]) {
        guard let index = channels.index(of: channel) else { return }
        if index == 0 { learnMachine() }
        let session = ChannelSession(channel: channel, queueIndex: index, nic: nic, host: host, queueLimit: queueLimit,
                                     hooks: hooks())
        nic.state.withLock { s in
            if index == 0 { s.channels = [channel] }
            while s.channels.count <= index { s.channels.append(nil) }
            s.channels[index] = channel
        }
        channels.slots[index].session.withLock { current in
            current?.close()
            current = session
            session.signalled()
        }
    }

    func channelSignalled(_ channel: UInt32) { _ = channels.withSession(channel: channel) { $0.signalled() } }

    func channelClosed(_ channel: UInt32) {
        guard let index = channels.index(of: channel) else { return }
        channels.slots[index].session.withLock { session in
            session?.close()
            session = nil
        }
        if index == 0 {
            channels.clearSubChannels()
            nic.forgetGuest()
        } else {
            nic.state.withLock { s in if index < s.channels.count { s.channels[index] = nil } }
        }
        wakeAllReceivers()
    }

    func fdReady(token: UInt64, events: FDEvents) { receiver(token)?.drain() }

    func workPosted(token: UInt64) {
        if let receiver = receiver(token) {
            receiver.drain()
        } else if token & ChannelTable.workBase == ChannelTable.workBase {
            channelSignalled(UInt32(truncatingIfNeeded: token))
        }
    }

    private func receiver(_ token: UInt64) -> ReceiveQueue? {
        guard token & ~0xFF == ReceiveQueue.tokenBase else { return nil }
        let index = Int(token & 0xFF)
        return index < receivers.count ? receivers[index] : nil
    }

    private func wakeAllReceivers() {
        for r in receivers { host.postWork(token: r.token) }
    }

    private func hooks() -> ChannelSession.Hooks {
        let host = self.host, name = self.name, primary = self.primary
        return ChannelSession.Hooks(
            offerSubChannels: { [weak self] count in
                guard let self else { return nil }
                do {
                    let ids = try host.offerSubchannels(primary: primary, count: count)
                    guard channels.addSubChannels(ids) else { return nil }
                    return ids
                } catch {
                    host.log(.warning, "\(name): cannot offer \(count) sub-channels: \(error)")
                    return nil
                }
            },
            wakeReceivers: { waiters in
                for i in 0..<64 where waiters & (1 << UInt64(i)) != 0 { host.postWork(token: ReceiveQueue.tokenBase | UInt64(i)) }
            },
            receiveStateChanged: { [weak self] in self?.wakeAllReceivers() },
            log: { message in host.log(.warning, "\(name): \(message)") })
    }

    // MARK: Link state

    func timerFired(token: UInt64) {
        guard token == Self.linkTimer else { return }
        updateLink()
    }

    /// Tells the guest when the port's carrier (or the management override) changed.
    private func updateLink() {
        let carrier = port?.linkUp ?? true
        let change: Bool? = nic.state.withLock { s in
            let up = carrier && s.administrativelyUp
            guard up != s.reportedLinkUp else { return nil }
            s.reportedLinkUp = up
            return up
        }
        guard let up = change else { return }
        host.log(.info, "\(name): link \(up ? "up" : "down")")
        let status = up ? RNDISStatus.mediaConnect : RNDISStatus.mediaDisconnect
        _ = channels.withSession(index: 0) { $0.deliverControl(RNDISResponse.indicateStatus(status: status, buffer: []).encoded()) }
        wakeAllReceivers()
    }

    // MARK: Management

    private struct LinkRequest: Decodable {
        var up: Bool
    }

    func control(_ request: ControlRequest) -> ControlReply? {
        switch request.op {
        case "status":
            let s = nic.state.withLock { s in
                (s.mac, s.reportedLinkUp, s.version, s.rndisInitialized, s.packetFilter, s.channels.compactMap { $0 }.count, s.rss.enabled)
            }
            var json = "{\"mac\":\"\(s.0)\",\"link\":\(s.1 ? "\"up\"" : "\"down\""),"
            json += "\"nvsp\":\(s.2.map { "\"\($0)\"" } ?? "null"),\"rndis\":\(s.3),\"packetFilter\":\(s.4),"
            json += "\"channels\":\(s.5),\"rss\":\(s.6),\"counters\":{"
            json += NetMetrics.Counter.allCases.map { "\"\($0.key)\":\(nic.metrics.value($0))" }.joined(separator: ",")
            return .success(json: json + "}}")
        case "link":
            let link: LinkRequest
            do { link = try request.decode(LinkRequest.self) } catch { return .failure(.invalid, message: error.description) }
            nic.state.withLock { $0.administrativelyUp = link.up }
            updateLink()
            return .done
        default:
            return .failure(.unsupported, message: "netvsp takes the ops 'status' and 'link', not '\(request.op)'")
        }
    }

    // MARK: State

    /// A NIC's guest-facing state lives in the guest's buffers and the VMBus host's channels; what
    /// the VSP adds is the address and the management link override. A restored guest renegotiates
    /// when its channel reopens.
    func save(to state: inout StateWriter) {
        let (mac, up) = nic.state.withLock { ($0.mac, $0.administrativelyUp) }
        state.write(bytes: mac.array)
        state.write(UInt8(up ? 1 : 0))
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("unknown state version \(version)") }
        let mac = try state.readBytes(maxCount: 6)
        let up: UInt8 = try state.read()
        try state.finish()
        guard mac.count == 6 else { throw StateError("a MAC address of \(mac.count) bytes") }
        reset()
        nic.state.withLock { s in
            s.mac = MACAddressBytes.make(mac)
            s.administrativelyUp = up != 0
        }
    }
}
