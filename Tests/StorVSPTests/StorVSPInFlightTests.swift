import Foundation
import Testing
import SCSIProtocol
import StorVSPProtocol
import VeneerDisk
@testable import StorVSP

/// Commands in flight on an engine that completes later (as libaio does).
@Suite("storvsp in flight")
struct StorVSPInFlightTests {
    func session(depth: Int, factory: DeferredFactory, disk: LogicalUnit) -> (ChannelSession, FakeGuestChannel, ControllerState) {
        let controller = ControllerState(limits: .init(subChannelCap: 0, maxTransferBytes: 1 << 19, queueDepth: depth),
                                         luns: LUNMap([disk]), queueFactory: factory)
        let guest = FakeGuestChannel()
        let s = ChannelSession(channel: 1, isPrimary: true, controller: controller, transport: guest,
                               hooks: .init(offerSubChannels: { _ in false }, watch: { _, _ in true }, unwatch: { _ in }, log: { _ in }))
        guest.incoming = [Guest.control(.beginInitialization), Guest.version(0x602), Guest.control(.endInitialization)]
        s.signalled()
        _ = guest.takeReplies()
        return (s, guest, controller)
    }

    @Test func theQueueDepthBoundsWhatIsReadAndCompletionsResumeReading() throws {
        let (disk, path) = try makeDisk(blocks: 64)
        defer { unlink(path) }
        let factory = DeferredFactory()
        let (s, guest, _) = session(depth: 4, factory: factory, disk: disk)
        for n in 0..<10 {
            let gpa = guest.ramBase + UInt64(n) * 512
            guest.poke(gpa, [UInt8](repeating: UInt8(n + 1), count: 512))
            guest.incoming.append(Guest.srb([0x2A, 0, 0, 0, 0, UInt8(n), 0, 0, 1, 0], direction: .write, length: 512, gpa: gpa, id: UInt64(100 + n)))
        }
        s.signalled()
        let queue = try #require(factory.queues.first)
        #expect(s.commandsInFlight == 4 && queue.submitted == 4 && guest.replies.isEmpty && guest.incoming.count == 6)
        queue.perReap = 2
        s.completionsReady(key: 0)
        #expect(guest.takeReplies().map(\.transactionID) == [100, 101])
        #expect(s.commandsInFlight == 4 && queue.submitted == 6, "two more read once two completed")
        queue.perReap = nil
        while s.commandsInFlight > 0 { s.completionsReady(key: 0) }
        #expect(guest.takeReplies().map(\.transactionID) == (102..<110).map(UInt64.init))
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect((0..<10).allSatisfy { file[$0 * 512] == UInt8($0 + 1) })
    }

    @Test func quiesceCompletesEverythingInFlightAndKeepsTheReplies() throws {
        let (disk, path) = try makeDisk(blocks: 64)
        defer { unlink(path) }
        let factory = DeferredFactory()
        let (s, guest, _) = session(depth: 16, factory: factory, disk: disk)
        guest.incoming = (0..<3).map { Guest.srb([0x28, 0, 0, 0, 0, UInt8($0), 0, 0, 1, 0], direction: .read, length: 512, gpa: guest.ramBase, id: UInt64(7 + $0)) }
        s.signalled()
        #expect(s.commandsInFlight == 3)
        factory.queues[0].perReap = 1
        let kept = s.quiesce()
        #expect(s.commandsInFlight == 0 && kept.map(\.transactionID) == [7, 8, 9])
        #expect(try kept.allSatisfy { try SRBCompletion($0).srb == 1 })
    }

    @Test func failedIOIsAMediumErrorWithTheLBAAndAFullHostDiskIsSpaceAllocationFailed() throws {
        let path = try TestImages.temporaryFile(size: 64 * 512)
        defer { unlink(path) }
        let image = FailingImage(try PlainRawImage(path: path, readOnly: false, logicalBlockSize: 512, physicalBlockSize: 512))
        let disk = LogicalUnit(kind: .disk, target: 0, lun: 0, image: image, readOnly: false, serial: "F", naaIdentifier: [],
                               maxTransferBytes: 1 << 19)
        let factory = DeferredFactory()
        let (s, guest, _) = session(depth: 16, factory: factory, disk: disk)
        image.failure = DiskError(.io(errno: 5), path: path, "injected")
        guest.incoming = [Guest.srb([0x28, 0, 0, 0, 0, 40, 0, 0, 1, 0], direction: .read, length: 512, gpa: guest.ramBase, id: 5),
                          Guest.srb([0x2A, 0, 0, 0, 0, 41, 0, 0, 1, 0], direction: .write, length: 512, gpa: guest.ramBase, id: 6)]
        s.signalled()
        s.completionsReady(key: 0)
        var replies = try guest.takeReplies().map { try SRBCompletion($0) }
        #expect(replies.map(\.srb) == [0x84, 0x84])
        #expect(replies[0].sense == SenseData(.mediumError, .unrecoveredReadError, information: 40))
        #expect(replies[1].sense == SenseData(.mediumError, .writeError, information: 41))
        image.failure = DiskError(.noSpace, path: path, "full")
        guest.incoming = [Guest.srb([0x2A, 0, 0, 0, 0, 41, 0, 0, 1, 0], direction: .write, length: 512, gpa: guest.ramBase, id: 7)]
        s.signalled()
        s.completionsReady(key: 0)
        replies = try guest.takeReplies().map { try SRBCompletion($0) }
        #expect(replies.first?.sense?.key == .dataProtect && replies.first?.sense?.additional == .spaceAllocationFailedWriteProtect)
    }
}

/// A raw image that fails every mapping with `failure` when set.
final class FailingImage: DiskImage, @unchecked Sendable {
    let inner: PlainRawImage
    var failure: DiskError?
    var path: String { inner.path }
    var geometry: DiskGeometry { inner.geometry }
    var isReadOnly: Bool { inner.isReadOnly }
    var supportsDiscard: Bool { false }
    var dataFiles: [DiskDataFile] { inner.dataFiles }
    init(_ inner: PlainRawImage) { self.inner = inner }
    func mapForRead(offset: UInt64, length: UInt64) throws(DiskError) -> [DiskExtent] {
        if let failure { throw failure }
        return try inner.mapForRead(offset: offset, length: length)
    }
    func mapForWrite(offset: UInt64, length: UInt64) throws(DiskError) -> DiskWriteMapping {
        if let failure { throw failure }
        return try inner.mapForWrite(offset: offset, length: length)
    }
    func completeWrite(_ mapping: DiskWriteMapping, durable: Bool) throws(DiskError) {}
    func discard(offset: UInt64, length: UInt64) throws(DiskError) {}
    func flush() throws(DiskError) {}
}
