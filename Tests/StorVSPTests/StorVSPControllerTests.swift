import Foundation
import Testing
import SCSIProtocol
import StorVSPProtocol
import VeneerPluginABI
import VeneerDisk
import VeneerPluginKit
@testable import StorVSP

/// A minimal ABI 1.7 host table for the controller: offers, sub-channels, segment reads, batched
/// writes and mem_map, backed by this object (passed to every call as the `host` pointer).
final class ABIHost {
    var api = veneer_host_api()
    var offers: [UInt32] = []
    var nextChannel: UInt32 = 7
    var rings: [UInt32: [IncomingPacket]] = [:]
    var written: [UInt32: [ReplyPacket]] = [:]
    var logs: [String] = []
    var watches: [Int32: UInt64] = [:]
    let guest = FakeGuestChannel()

    init() {
        api.struct_size = UInt32(MemoryLayout<veneer_host_api>.size)
        api.abi_major = 1
        api.abi_minor = 7
        api.log = { host, _, message in
            guard let host, let message else { return }
            ABIHost.of(host).logs.append(String(cString: message))
        }
        api.vmbus_offer = { host, _, channel in
            guard let host, let channel else { return veneer_status(VENEER_EINVAL) }
            let me = ABIHost.of(host)
            channel.pointee = me.nextChannel
            me.offers.append(me.nextChannel)
            me.nextChannel += 1
            return veneer_status(VENEER_OK)
        }
        api.vmbus_offer_subchannels = { host, _, count, channels in
            guard let host, let channels else { return veneer_status(VENEER_EINVAL) }
            let me = ABIHost.of(host)
            for i in 0..<Int(count) {
                channels[i] = me.nextChannel
                me.nextChannel += 1
            }
            return veneer_status(VENEER_OK)
        }
        api.vmbus_read_segments = { host, channel, info, buffer, capacity, segments, segmentCapacity, segmentCount in
            guard let host, let info, let segmentCount else { return veneer_status(VENEER_EINVAL) }
            let me = ABIHost.of(host)
            guard var queue = me.rings[channel], !queue.isEmpty else { return veneer_status(VENEER_EAGAIN) }
            let packet = queue[0]
            info.pointee.type = packet.type
            info.pointee.flags = packet.flags
            info.pointee.transaction_id = packet.transactionID
            info.pointee.header_length = 0
            info.pointee.payload_length = UInt32(packet.payload.count)
            segmentCount.pointee = UInt32(packet.segments.count)
            guard packet.payload.count <= capacity, packet.segments.count <= Int(segmentCapacity) else { return veneer_status(VENEER_ENOSPC) }
            if let buffer { packet.payload.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            for (i, s) in packet.segments.enumerated() { segments?[i] = veneer_guest_segment(gpa: s.gpa, length: s.length) }
            queue.removeFirst()
            me.rings[channel] = queue
            return veneer_status(VENEER_OK)
        }
        api.vmbus_write_batch = { host, channel, packets, count, stride, written in
            guard let host, let packets, let written else { return veneer_status(VENEER_EINVAL) }
            let me = ABIHost.of(host)
            let raw = UnsafeRawPointer(packets)
            for i in 0..<Int(count) {
                let send = raw.load(fromByteOffset: i * Int(stride), as: veneer_vmbus_send.self)
                let payload = send.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(send.payload_length))) } ?? []
                me.written[channel, default: []].append(ReplyPacket(type: send.type, transactionID: send.transaction_id, payload: payload))
            }
            written.pointee = count
            return veneer_status(VENEER_OK)
        }
        api.fd_watch = { host, fd, _, token in
            guard let host else { return veneer_status(VENEER_EINVAL) }
            ABIHost.of(host).watches[fd] = token
            return veneer_status(VENEER_OK)
        }
        api.fd_unwatch = { host, fd in
            guard let host else { return veneer_status(VENEER_EINVAL) }
            ABIHost.of(host).watches[fd] = nil
            return veneer_status(VENEER_OK)
        }
        api.mem_map = { host, gpa, length, flags in
            guard let host else { return nil }
            return ABIHost.of(host).guest.mapGuest(gpa, length: length, writable: flags & UInt32(VENEER_MAP_WRITE) != 0)?.baseAddress
        }
    }

    /// Polls the watched eventfds (the libaio engines) until `channel` has `count` replies.
    func awaitReplies(_ controller: StorVSPController, channel: UInt32, count: Int) {
        for _ in 0..<200 where (written[channel]?.count ?? 0) < count {
            var fds = watches.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&fds, nfds_t(fds.count), 50) > 0 else { continue }
            for p in fds where p.revents != 0 { controller.fdReady(token: watches[p.fd] ?? 0, events: .readable) }
        }
    }

    static func of(_ host: OpaquePointer) -> ABIHost { Unmanaged<ABIHost>.fromOpaque(UnsafeRawPointer(host)).takeUnretainedValue() }

    /// Runs `body` with HostServices pointing at this table (valid only inside).
    func withServices<T>(_ body: (HostServices) throws -> T) rethrows -> T {
        try withUnsafePointer(to: &api) { table in
            try body(HostServices(api: table, host: OpaquePointer(Unmanaged.passUnretained(self).toOpaque())))
        }
    }

    func take(_ channel: UInt32) -> [ReplyPacket] {
        defer { written[channel] = [] }
        return written[channel] ?? []
    }
}

@Suite("storvsp controller")
struct StorVSPControllerTests {
    static func opener(_ disk: DiskConfiguration) throws(DiskError) -> (any DiskImage)? {
        try StorVSPController.openImage(disk)
    }

    @Test func offersTheSCSIInterfaceAndServesLinuxsSequenceThroughTheABI() throws {
        let host = ABIHost()
        let path = try TestImages.temporaryFile(size: 1 << 20, fill: { UInt8(truncatingIfNeeded: $0 >> 9) })
        defer { unlink(path) }
        try host.withServices { services in
            let controller = try StorVSPController(host: services, name: "scsi0", instance: "11111111-2222-3333-4444-555555555555",
                                                   limits: .init(subChannelCap: 64, maxTransferBytes: 1 << 19, queueDepth: 64),
                                                   disks: [DiskConfiguration(lun: 0, path: path, cache: .writeback)], opener: Self.opener)
            controller.controllerStateForTests.setVCPUCount(3)
            #expect(host.offers == [7])
            controller.channelOpened(7, userData: [UInt8](repeating: 0, count: 24))
            host.rings[7] = [Guest.control(.beginInitialization), Guest.version(0x602), Guest.control(.queryProperties),
                             Guest.control(.endInitialization),
                             Guest.control(.createSubChannels, union: SubChannelRequest(count: 2).encode())]
            controller.channelSignalled(7)
            let replies = host.take(7)
            #expect(replies.count == 5 && replies.allSatisfy { $0.type == 11 && $0.payload.count == 64 })
            #expect(try replies.map { try VStorPacket.decode($0.payload).status } == [0, 0, 0, 0, 0])
            #expect(ChannelProperties(union: try VStorPacket.decode(replies[2].payload).union).maxSubChannels == 2)
            #expect(host.nextChannel == 10, "two sub-channels offered")
            // I/O on sub-channel 9: a READ(10) of block 5 through GPA-direct segments.
            controller.channelOpened(9, userData: [])
            let gpa = host.guest.ramBase + 0x3000
            host.rings[9] = [Guest.srb([0x28, 0, 0, 0, 0, 5, 0, 0, 1, 0], direction: .read, length: 512, gpa: gpa, id: 77)]
            controller.channelSignalled(9)
            host.awaitReplies(controller, channel: 9, count: 1)
            let io = host.take(9)
            #expect(io.count == 1 && io[0].transactionID == 77)
            #expect(try SRBCompletion(io[0]).srb == 1 && host.guest.peek(gpa, 512) == [UInt8](repeating: 5, count: 512))
            // Channels the controller did not offer are ignored.
            controller.channelOpened(42, userData: [])
            host.rings[42] = [Guest.control(.beginInitialization)]
            controller.channelSignalled(42)
            #expect(host.take(42).isEmpty)
        }
    }

    @Test func hotAddAndRemoveAnnounceToTheGuest() throws {
        let host = ABIHost()
        let a = try TestImages.temporaryFile(size: 1 << 16), b = try TestImages.temporaryFile(size: 1 << 16)
        defer { unlink(a); unlink(b) }
        try host.withServices { services in
            let controller = try StorVSPController(host: services, name: "scsi0", instance: "11111111-2222-3333-4444-555555555555",
                                                   limits: .init(subChannelCap: 0, maxTransferBytes: 1 << 19, queueDepth: 64),
                                                   disks: [DiskConfiguration(lun: 0, path: a)], opener: Self.opener)
            controller.channelOpened(7, userData: [])
            host.rings[7] = [Guest.control(.beginInitialization), Guest.version(0x600), Guest.control(.queryProperties),
                             Guest.control(.endInitialization)]
            controller.channelSignalled(7)
            _ = host.take(7)
            try controller.attach(DiskConfiguration(lun: 4, path: b))
            var announce = host.take(7)
            #expect(announce.count == 1 && announce[0].transactionID == 0 && announce[0].type == 6)
            #expect(try VStorPacket.decode(announce[0].payload).operation == VStorOperation.enumerateBus.rawValue)
            #expect(controller.attachedLUNs.map(\.lun) == [0, 4])
            #expect(throws: PluginError.self) { try controller.attach(DiskConfiguration(lun: 4, path: b)) }
            try controller.detach(target: 0, lun: 0)
            announce = host.take(7)
            #expect(announce.count == 1)
            host.rings[7] = [Guest.srb([0, 0, 0, 0, 0, 0], lun: 0, id: 3), Guest.srb([0, 0, 0, 0, 0, 0], lun: 4, id: 4)]
            // (TEST UNIT READY answers at once: no engine involved.)
            controller.channelSignalled(7)
            let replies = try host.take(7).map { try SRBCompletion($0) }
            #expect(replies.map(\.srb) == [SRBStatus.invalidLUN.rawValue, 1])
            #expect(throws: PluginError.self) { try controller.detach(target: 0, lun: 0) }
            // A missing file is refused with the device, LUN and file named.
            do {
                try controller.attach(DiskConfiguration(lun: 9, path: "/nonexistent/disk.img"))
                Issue.record("attached a missing file")
            } catch {
                let text = "\(error)"
                #expect(text.contains("scsi0") && text.contains("LUN 9") && text.contains("/nonexistent/disk.img"))
            }
        }
    }

    @Test func saveAndLoadKeepTheNegotiatedStateAndRefuseGarbage() throws {
        let host = ABIHost()
        let path = try TestImages.temporaryFile(size: 1 << 16), other = try TestImages.temporaryFile(size: 1 << 16)
        defer { unlink(path); unlink(other) }
        try host.withServices { services in
            // Each instance has its own image: an open image is locked against a second user.
            let make = { (image: String) throws -> StorVSPController in
                try StorVSPController(host: services, name: "scsi0", instance: "11111111-2222-3333-4444-555555555555",
                                      limits: .init(subChannelCap: 4, maxTransferBytes: 1 << 19, queueDepth: 64),
                                      disks: [DiskConfiguration(lun: 0, path: image)], opener: Self.opener)
            }
            let first = try make(path)
            first.channelOpened(7, userData: [])
            host.rings[7] = [Guest.control(.beginInitialization), Guest.version(0x501), Guest.control(.queryProperties),
                             Guest.control(.endInitialization)]
            first.channelSignalled(7)
            _ = host.take(7)
            var writer = StateWriter()
            first.save(to: &writer)
            let second = try make(other)   // offered as channel 8
            var reader = StateReader(writer.bytes)
            // The saved primary is channel 7; the second instance's primary is 8, so 7 is a sub-channel slot there.
            try second.load(version: 1, from: &reader)
            var bad = StateReader(Array(writer.bytes.dropLast()))
            #expect(throws: StateError.self) { try second.load(version: 1, from: &bad) }
            var wrong = StateReader(writer.bytes)
            #expect(throws: StateError.self) { try second.load(version: 2, from: &wrong) }
            // Round trip on the same instance: I/O works at once, without a new initialization.
            var again = StateReader(writer.bytes)
            try first.load(version: 1, from: &again)
            host.rings[7] = [Guest.srb([0, 0, 0, 0, 0, 0], id: 9)]
            first.channelSignalled(7)
            #expect(try host.take(7).map { try SRBCompletion($0).srb } == [1])
        }
    }

    @Test func parametersAndIdentities() {
        let names = StorVSPController.definition.parameters.map(\.name)
        #expect(names == ["instance", "max_subchannels", "max_transfer_bytes", "queue_depth", "disk"])
        #expect(DiskConfiguration.members.map(\.name) == ["lun", "target", "path", "format", "read_only", "cache", "serial",
                                                          "logical_block_size", "physical_block_size", "type"])
        let guid = StableIdentity.instanceGUID(for: "scsi0")
        #expect(guid == StableIdentity.instanceGUID(for: "scsi0") && guid != StableIdentity.instanceGUID(for: "scsi1"))
        #expect(guid.count == 36 && Array(guid)[14] == "4")
        #expect(StableIdentity.naa(instance: guid, target: 0, lun: 1) != StableIdentity.naa(instance: guid, target: 0, lun: 2))
        #expect(StableIdentity.serial(instance: guid, target: 0, lun: 1).count == 16)
    }
}
