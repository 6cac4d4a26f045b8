import Foundation
import SCSIProtocol
import StorVSPProtocol
import VeneerDisk
@testable import StorVSP

/// A guest for channel tests: RAM the VSP maps, the guest's ring of packets and the replies.
final class FakeGuestChannel: ChannelTransport, @unchecked Sendable {
    let ramBase: UInt64 = 0x10_0000
    let ram: UnsafeMutableRawBufferPointer
    var incoming: [IncomingPacket] = []
    var replies: [ReplyPacket] = []
    /// Replies the ring still has room for (nil: unlimited).
    var room: Int?
    var broken = false
    var writeCalls = 0

    init(ramSize: Int = 4 << 20) {
        ram = UnsafeMutableRawBufferPointer.allocate(byteCount: ramSize, alignment: 4096)
        ram.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { ram.deallocate() }

    func readPacket() throws(ChannelBroken) -> IncomingPacket? {
        if broken { throw ChannelBroken(description: "ring broken") }
        return incoming.isEmpty ? nil : incoming.removeFirst()
    }

    func write(_ packets: [ReplyPacket]) -> WriteResult {
        writeCalls += 1
        let fit = min(packets.count, room ?? .max)
        replies += packets.prefix(fit)
        if let r = room { room = r - fit }
        return .written(fit, full: fit < packets.count)
    }

    func mapGuest(_ gpa: UInt64, length: UInt64, writable: Bool) -> UnsafeMutableRawBufferPointer? {
        guard gpa >= ramBase, length <= UInt64(ram.count), gpa - ramBase <= UInt64(ram.count) - length,
              let base = ram.baseAddress else { return nil }
        return UnsafeMutableRawBufferPointer(start: base + Int(gpa - ramBase), count: Int(length))
    }

    func poke(_ gpa: UInt64, _ bytes: [UInt8]) {
        for (i, b) in bytes.enumerated() { ram[Int(gpa - ramBase) + i] = b }
    }

    func peek(_ gpa: UInt64, _ count: Int) -> [UInt8] { Array(ram[Int(gpa - ramBase)..<Int(gpa - ramBase) + count]) }

    func takeReplies() -> [ReplyPacket] {
        defer { replies = [] }
        return replies
    }
}

/// vstor packets as storvsc builds them.
enum Guest {
    static let initID: UInt64 = .max - 2

    static func control(_ op: VStorOperation, union: [UInt8] = [], id: UInt64 = initID) -> IncomingPacket {
        IncomingPacket(type: IncomingPacket.inBand, flags: 1, transactionID: id,
                       payload: VStorPacket(operation: op, flags: 1, union: union).encode(), segments: [])
    }

    static func version(_ v: UInt16) -> IncomingPacket {
        control(.queryProtocolVersion, union: ProtocolVersionQuery(version: StorageProtocolVersion(rawValue: v)).encode())
    }

    /// An EXECUTE_SRB: GPA-direct when `buffer` is given (one range at `gpa`).
    static func srb(_ cdb: [UInt8], lun: UInt8 = 0, target: UInt8 = 0, path: UInt8 = 0, direction: VMSCSIRequest.DataDirection = .none,
                    length: Int = 0, gpa: UInt64? = nil, id: UInt64 = 1, requestSize: Int = VMSCSIRequest.longSize) -> IncomingPacket {
        let request = VMSCSIRequest(length: UInt16(requestSize), pathID: path, targetID: target, lun: lun, cdbLength: UInt8(cdb.count),
                                    senseInfoLength: 0x14, dataIn: direction.rawValue, dataTransferLength: UInt32(length),
                                    cdbOrSense: cdb, queueTag: 0xFF, queueAction: 0x20, srbFlags: 0x10A, timeOutValue: 60)
        let packet = VStorPacket(operation: .executeSRB, flags: 1, union: request.encode(size: requestSize))
        let payload = packet.encode(size: VStorPacket.headerSize + requestSize)
        if let gpa {
            return IncomingPacket(type: IncomingPacket.gpaDirect, flags: 1, transactionID: id, payload: payload,
                                  segments: [GuestSegmentRange(gpa: gpa, length: UInt64(length))])
        }
        return IncomingPacket(type: IncomingPacket.inBand, flags: 1, transactionID: id, payload: payload, segments: [])
    }
}

/// A decoded EXECUTE_SRB completion.
struct SRBCompletion {
    var packet: VStorPacket
    var request: VMSCSIRequest
    var transactionID: UInt64
    var srb: UInt8 { request.srbStatus }
    var scsi: UInt8 { request.scsiStatus }
    var sense: SenseData? { SenseData.decode(Array(request.cdbOrSense.prefix(Int(request.senseInfoLength)))) }
    var transferred: Int { Int(request.dataTransferLength) }

    init(_ reply: ReplyPacket) throws {
        packet = try VStorPacket.decode(reply.payload)
        request = VMSCSIRequest(union: packet.union, size: VMSCSIRequest.longSize)
        transactionID = reply.transactionID
    }
}

enum TestImages {
    static func temporaryFile(size: Int, fill: (Int) -> UInt8 = { _ in 0 }) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("storvsp-\(UUID().uuidString).img").path
        let bytes = (0..<size).map(fill)
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw CocoaError(.fileWriteUnknown) }
        return path
    }
}

/// A raw test image whose discard writes zeros, so UNMAP paths run against a real file.
final class ZeroingDiscardImage: DiskImage, @unchecked Sendable {
    let inner: PlainRawImage
    var path: String { inner.path }
    var geometry: DiskGeometry { inner.geometry }
    var isReadOnly: Bool { inner.isReadOnly }
    var supportsDiscard: Bool { true }
    var dataFiles: [DiskDataFile] { inner.dataFiles }
    init(_ inner: PlainRawImage) { self.inner = inner }
    func mapForRead(offset: UInt64, length: UInt64) throws(DiskError) -> [DiskExtent] { try inner.mapForRead(offset: offset, length: length) }
    func mapForWrite(offset: UInt64, length: UInt64) throws(DiskError) -> DiskWriteMapping { try inner.mapForWrite(offset: offset, length: length) }
    func completeWrite(_ mapping: DiskWriteMapping, durable: Bool) throws(DiskError) {}
    func discard(offset: UInt64, length: UInt64) throws(DiskError) {
        let zeros = [UInt8](repeating: 0, count: Int(length))
        _ = zeros.withUnsafeBytes { pwrite(inner.fd, $0.baseAddress, $0.count, off_t(offset)) }
    }
    func flush() throws(DiskError) {}
}

/// A controller with its LUNs and a primary channel session on a fake guest.
final class ChannelFixture {
    let guest = FakeGuestChannel()
    let controller: ControllerState
    let primary: ChannelSession
    let paths: [String]

    init(units: [LogicalUnit], paths: [String] = [], vcpus: Int = 4, subChannelCap: Int = 64, depth: Int = 128,
         maxTransfer: UInt32 = 512 * 1024, factory: any LUNQueueFactory = SynchronousQueueFactory()) {
        controller = ControllerState(limits: .init(subChannelCap: subChannelCap, maxTransferBytes: maxTransfer, queueDepth: depth),
                                     luns: LUNMap(units), queueFactory: factory)
        controller.setVCPUCount(vcpus)
        self.paths = paths
        let box = Box()
        primary = ChannelSession(channel: 1, isPrimary: true, controller: controller, transport: guest, hooks: .init(
            offerSubChannels: { box.requests.append($0); return true },
            watch: { fd, key in box.watches[fd] = key; return true }, unwatch: { box.watches[$0] = nil },
            log: { box.logs.append($0) }))
        self.box = box
    }

    final class Box {
        var requests: [Int] = []
        var logs: [String] = []
        var watches: [Int32: Int] = [:]
    }

    /// Delivers the completions of libaio engines until no command is in flight (or 10 s pass).
    func drainEngines() {
        for _ in 0..<200 where primary.commandsInFlight > 0 {
            var fds = box.watches.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&fds, nfds_t(fds.count), 50) > 0 else { continue }
            for p in fds where p.revents != 0 { primary.completionsReady(key: box.watches[p.fd] ?? 0) }
        }
    }
    private var box: Box
    var offered: [Int] { box.requests }
    var logLines: [String] { box.logs }

    deinit { for p in paths { unlink(p) } }

    func send(_ packets: [IncomingPacket]) -> [ReplyPacket] {
        guest.incoming += packets
        primary.signalled()
        return guest.takeReplies()
    }

    /// Linux's initialization: BEGIN, versions newest first, properties, END.
    @discardableResult
    func initializeLikeLinux() throws -> (version: UInt16, properties: ChannelProperties) {
        var replies = send([Guest.control(.beginInitialization)])
        for v: UInt16 in [0x602, 0x600, 0x501] {
            replies = send([Guest.version(v)])
            if try VStorPacket.decode(replies[0].payload).status == 0 {
                let props = send([Guest.control(.queryProperties)])
                _ = send([Guest.control(.endInitialization)])
                return (v, ChannelProperties(union: try VStorPacket.decode(props[0].payload).union))
            }
        }
        throw CocoaError(.featureUnsupported)
    }

    func srb(_ packet: IncomingPacket) throws -> SRBCompletion {
        let replies = send([packet])
        guard replies.count == 1 else { throw CocoaError(.coderInvalidValue) }
        return try SRBCompletion(replies[0])
    }
}

func makeDisk(lun: Int = 0, target: Int = 0, blocks: Int = 2048, blockSize: UInt32 = 512, readOnly: Bool = false, cache: DiskCacheMode = .writeback,
              discard: Bool = false, fill: (Int) -> UInt8 = { _ in 0 }) throws -> (LogicalUnit, String) {
    let path = try TestImages.temporaryFile(size: blocks * Int(blockSize), fill: fill)
    let raw = try PlainRawImage(path: path, readOnly: readOnly, logicalBlockSize: blockSize, physicalBlockSize: 4096)
    let image: any DiskImage = discard ? ZeroingDiscardImage(raw) : raw
    let unit = LogicalUnit(kind: .disk, target: target, lun: lun, image: image, readOnly: readOnly, cache: cache,
                           serial: "SER\(lun)", naaIdentifier: StableIdentity.naa(instance: "i", target: target, lun: lun),
                           maxTransferBytes: 512 * 1024)
    return (unit, path)
}

/// An engine whose requests complete only when the test says so (at `reap`), like libaio's: it
/// lets tests see commands in flight, the queue-depth limit and the completion path.
final class DeferredQueue: LUNQueue {
    let inner: SynchronousLUNQueue
    var held: [LUNRequest] = []
    var submitted = 0
    /// Requests `reap` completes per call (nil: all).
    var perReap: Int?
    init(image: any DiskImage) { inner = SynchronousLUNQueue(image: image, cache: .writeback) }
    var eventFD: Int32 { -1 }
    var outstanding: Int { held.count }
    func submit(_ requests: [LUNRequest]) -> [LUNCompletion] {
        submitted += requests.count
        held += requests
        return []
    }
    func reap() -> [LUNCompletion] {
        let take = min(perReap ?? held.count, held.count)
        let now = Array(held.prefix(take))
        held.removeFirst(take)
        return inner.submit(now)
    }
    func close() { _ = reap() }
}

final class DeferredFactory: LUNQueueFactory, @unchecked Sendable {
    var queues: [DeferredQueue] = []
    func makeQueue(for unit: LogicalUnit, image: any DiskImage) throws(DiskError) -> any LUNQueue {
        let queue = DeferredQueue(image: image)
        queues.append(queue)
        return queue
    }
}
