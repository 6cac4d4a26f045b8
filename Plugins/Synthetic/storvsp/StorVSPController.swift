import SCSIProtocol
import StorVSPProtocol
import VeneerDisk
import VeneerPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// A synthetic SCSI controller: one VMBus offer (plus the sub-channels the guest asks for), up
/// to 2 targets × 64 LUNs behind it.
final class StorVSPController: VeneerDevice {
    typealias DiskOpener = @Sendable (DiskConfiguration) throws(DiskError) -> (any DiskImage)?

    let host: HostServices
    let name: String
    let instance: String
    let controller: ControllerState
    let primary: UInt32
    private let opener: DiskOpener
    private let channels: ChannelTable

    init(host: HostServices, name: String, instance: String, limits: ControllerState.Limits, disks: [DiskConfiguration],
         opener: @escaping DiskOpener) throws(PluginError) {
        self.host = host
        self.name = name
        self.instance = instance
        self.opener = opener
        var map = LUNMap()
        for disk in disks {
            guard map.unit(path: 0, target: UInt8(disk.target), lun: UInt8(disk.lun)) == nil else {
                throw PluginError("device '\(name)': two disks at target \(disk.target) LUN \(disk.lun)")
            }
            map.attach(try Self.makeUnit(disk, device: name, instance: instance, maxTransfer: limits.maxTransferBytes, opener: opener))
        }
        controller = ControllerState(limits: limits, luns: map, queueFactory: AsyncQueueFactory(depth: limits.queueDepth))
        primary = try host.offerChannel(interfaceType: StorageInterface.scsiController, interfaceInstance: instance)
        channels = ChannelTable(primary: primary)
    }

    static func makeUnit(_ disk: DiskConfiguration, device: String, instance: String, maxTransfer: UInt32,
                         opener: DiskOpener) throws(PluginError) -> LogicalUnit {
        let image: (any DiskImage)?
        do { image = try opener(disk) } catch {
            throw PluginError("device '\(device)': LUN \(disk.lun) (target \(disk.target)): \(error)")
        }
        if disk.kind == .disk && image == nil {
            throw PluginError("device '\(device)': LUN \(disk.lun): no image")
        }
        if let image {
            // The engines are made per channel at first I/O; make one now so that a cache mode the
            // file system cannot give (O_DIRECT on tmpfs) is refused at create, not at the guest's I/O.
            do { try DiskQueue(image: image, cache: disk.cache, depth: 1).close() } catch {
                throw PluginError("device '\(device)': LUN \(disk.lun) (target \(disk.target)): \(error)")
            }
        }
        return LogicalUnit(kind: disk.kind, target: disk.target, lun: disk.lun, image: image, readOnly: disk.readOnly,
                           cache: disk.cache,
                           serial: disk.serial ?? StableIdentity.serial(instance: instance, target: disk.target, lun: disk.lun),
                           naaIdentifier: StableIdentity.naa(instance: instance, target: disk.target, lun: disk.lun),
                           maxTransferBytes: maxTransfer)
    }

    // MARK: Hot add and remove (for the management API)

    /// Attaches a LUN while the VM runs and tells the guest to rescan.
    func attach(_ disk: DiskConfiguration) throws(PluginError) {
        let unit = try Self.makeUnit(disk, device: name, instance: instance, maxTransfer: controller.limits.maxTransferBytes, opener: opener)
        let added = controller.update { map in
            guard map.unit(path: 0, target: UInt8(unit.target), lun: UInt8(unit.lun)) == nil else { return false }
            map.attach(unit)
            return true
        }
        guard added else { throw PluginError("device '\(name)': target \(disk.target) LUN \(disk.lun) is already attached") }
        channels.with(primary) { $0.announceBusChange() }
    }

    /// Detaches a LUN: later I/O to it completes with SRB INVALID_LUN, and the guest rescans.
    func detach(target: Int, lun: Int) throws(PluginError) {
        let removed = controller.update { map in map.detach(target: target, lun: lun) != nil }
        guard removed else { throw PluginError("device '\(name)': no LUN \(lun) at target \(target)") }
        channels.with(primary) { $0.announceBusChange() }
    }

    var attachedLUNs: [LogicalUnit] { controller.snapshot().0.all }
    var controllerStateForTests: ControllerState { controller }

    // MARK: Device

    func reset() {
        channels.clearSubChannels()
        channels.slots[0].session.withLock { session in
            session?.close()
            session = nil
        }
    }

    func start() { learnVCPUCount() }

    /// Sub-channels follow the vCPU count, a machine fact known once the machine is built (asked
    /// again when the guest opens the primary, in case it was not yet at start).
    private func learnVCPUCount() {
        if let bytes = try? host.machineFact(.vcpuCount), bytes.count >= 4 {
            controller.setVCPUCount(Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24))
        }
    }

    func io(_ access: IOAccess, data: inout UInt64) {}

    func channelOpened(_ channel: UInt32, userData: [UInt8]) {
        guard let slot = channels.slot(of: channel) else { return }
        if channel == primary { learnVCPUCount() }
        let fresh = makeSession(channel)
        slot.session.withLock { session in
            session?.close()
            session = fresh
            fresh.signalled()
        }
    }

    func channelSignalled(_ channel: UInt32) { channels.with(channel) { $0.signalled() } }

    func channelClosed(_ channel: UInt32) {
        channels.slot(of: channel)?.session.withLock { session in
            session?.close()
            session = nil
        }
        // The host closes and rescinds the primary's sub-channels with it.
        if channel == primary { channels.clearSubChannels() }
    }

    func fdReady(token: UInt64, events: FDEvents) {
        channels.with(UInt32(truncatingIfNeeded: token >> 32)) { $0.completionsReady(key: Int(token & 0xFFFF_FFFF)) }
    }

    private func makeSession(_ channel: UInt32) -> ChannelSession {
        ChannelSession(channel: channel, isPrimary: channel == primary, controller: controller,
                       transport: HostChannelTransport(host: host, channel: channel), hooks: hooks(for: channel))
    }

    private func hooks(for channel: UInt32) -> ChannelSession.Hooks {
        let host = self.host, name = self.name, primary = self.primary
        return ChannelSession.Hooks(
            // Weak: the table holds the sessions that hold these hooks (no cycle, so the images
            // close, and a VHDX is left clean, when the device goes).
            offerSubChannels: { [weak channels] count in
                guard let channels else { return false }
                do {
                    let ids = try host.offerSubchannels(primary: primary, count: count)
                    return channels.addSubChannels(ids)
                } catch {
                    host.log(.warning, "\(name): cannot offer \(count) sub-channels: \(error)")
                    return false
                }
            },
            watch: { fd, key in
                (try? host.watch(fd: fd, events: .readable, token: UInt64(channel) << 32 | UInt64(key))) != nil
            },
            unwatch: { fd in host.unwatch(fd: fd) },
            log: { message in host.log(.warning, "\(name): \(message)") })
    }

    // MARK: State

    /// Version 1: per open channel its initialization state and the replies it has not written
    /// yet. Commands in flight are completed first (the save waits for their I/O), so their
    /// replies are among those kept and nothing the guest asked for is lost.
    func save(to state: inout StateWriter) {
        var open: [(ChannelSession, [ReplyPacket])] = []
        for slot in channels.slots {
            slot.session.withLock { session in
                guard let session else { return }
                open.append((session, session.quiesce()))
            }
        }
        state.write(UInt32(open.count))
        for (session, replies) in open {
            state.write(session.channel)
            state.write(session.phase.rawValue)
            state.write(session.version?.rawValue ?? 0)
            state.write(UInt32(session.subChannelsOffered))
            state.write(UInt32(replies.count))
            for reply in replies {
                state.write(reply.type)
                state.write(reply.transactionID)
                state.write(bytes: reply.payload)
            }
        }
    }

    private struct SavedChannel {
        var channel: UInt32
        var phase: ChannelSession.Phase
        var version: StorageProtocolVersion?
        var offered: Int
        var waiting: [ReplyPacket]
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        guard version == 1 else { throw StateError("unknown state version \(version)") }
        let count: UInt32 = try state.read()
        guard count <= UInt32(ChannelTable.capacity) else { throw StateError("\(count) channels: a controller has at most 65") }
        var restored: [SavedChannel] = []
        for _ in 0..<count {
            let channel: UInt32 = try state.read()
            let raw: UInt8 = try state.read()
            guard let phase = ChannelSession.Phase(rawValue: raw) else { throw StateError("channel \(channel): phase \(raw) unknown") }
            let rawVersion: UInt16 = try state.read()
            let version = StorageProtocolVersion(rawValue: rawVersion)
            guard rawVersion == 0 || StorageProtocolVersion.supported.contains(version) else {
                throw StateError("channel \(channel): protocol version \(rawVersion) unknown")
            }
            let offered: UInt32 = try state.read()
            guard offered <= 64 else { throw StateError("channel \(channel): \(offered) sub-channels") }
            let replyCount: UInt32 = try state.read()
            guard replyCount <= 4096 else { throw StateError("channel \(channel): \(replyCount) waiting replies") }
            var waiting: [ReplyPacket] = []
            for _ in 0..<replyCount {
                let type: UInt16 = try state.read()
                let id: UInt64 = try state.read()
                let payload = try state.readBytes(maxCount: VStorPacket.size)
                waiting.append(ReplyPacket(type: type, transactionID: id, payload: payload))
            }
            restored.append(SavedChannel(channel: channel, phase: phase, version: rawVersion == 0 ? nil : version,
                                         offered: Int(offered), waiting: waiting))
        }
        try state.finish()
        guard restored.filter({ $0.channel == primary }).count <= 1 else { throw StateError("the primary channel saved twice") }
        reset()
        guard channels.addSubChannels(restored.map(\.channel).filter { $0 != primary }) else { throw StateError("too many sub-channels") }
        for saved in restored {
            let session = makeSession(saved.channel)
            session.restore(phase: saved.phase, version: saved.version, subChannelsOffered: saved.offered, waiting: saved.waiting)
            channels.slot(of: saved.channel)?.session.withLock { $0 = session }
        }
    }
}
