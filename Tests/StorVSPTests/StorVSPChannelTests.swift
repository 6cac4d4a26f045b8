import Foundation
import Testing
import SCSIProtocol
import StorVSPProtocol
@testable import StorVSP

/// The channel protocol and the SCSI target, with the test playing storvsc on a fake VMBus.
@Suite("storvsp channel")
struct StorVSPChannelTests {
    static let buffer: UInt64 = 0x10_0000 + 0x2000

    func fixture(units: [(LogicalUnit, String)] = [], vcpus: Int = 4, cap: Int = 64, depth: Int = 128) -> ChannelFixture {
        ChannelFixture(units: units.map(\.0), paths: units.map(\.1), vcpus: vcpus, subChannelCap: cap, depth: depth)
    }

    @Test func linuxInitializationNegotiates602AndAdvertisesSubChannels() throws {
        let f = fixture(vcpus: 4)
        let begin = f.send([Guest.control(.beginInitialization)])
        #expect(begin.count == 1 && begin[0].type == 11 && begin[0].transactionID == Guest.initID && begin[0].payload.count == 64)
        #expect(try VStorPacket.decode(begin[0].payload) == VStorPacket(operation: .completeIO, union: []))
        let (version, properties) = try f.initializeLikeLinux(afterBegin: true)
        #expect(version == 0x602)
        #expect(properties.supportsMultiChannel && properties.maxSubChannels == 3 && properties.maxTransferBytes == 512 * 1024)
        #expect(f.primary.phase == .ready && f.controller.readyProtocol == .win10)
        let create = f.send([Guest.control(.createSubChannels, union: SubChannelRequest(count: 3).encode())])
        #expect(try VStorPacket.decode(create[0].payload).status == 0)
        #expect(f.offered == [3])
        let tooMany = f.send([Guest.control(.createSubChannels, union: SubChannelRequest(count: 1).encode())])
        #expect(try VStorPacket.decode(tooMany[0].payload).status == NTStatus.invalidParameter.rawValue)
    }

    @Test func oneVCPUOrACapOfZeroOffersNoSubChannels() throws {
        for (vcpus, cap) in [(1, 64), (8, 0)] {
            let f = fixture(vcpus: vcpus, cap: cap)
            let (_, properties) = try f.initializeLikeLinux()
            #expect(!properties.supportsMultiChannel && properties.maxSubChannels == 0)
        }
        let f = fixture(vcpus: 16, cap: 2)
        #expect(try f.initializeLikeLinux().properties.maxSubChannels == 2)
    }

    @Test func unknownVersionsAreRefusedWithRevisionMismatchAndOldWindowsIsAccepted() throws {
        let f = fixture()
        _ = f.send([Guest.control(.beginInitialization)])
        for v: UInt16 in [0x0603, 0x0100, 0x0500, 0xFFFF] {
            let reply = try VStorPacket.decode(f.send([Guest.version(v)])[0].payload)
            #expect(reply.operation == 1 && reply.status == NTStatus.revisionMismatch.rawValue)
        }
        let win7 = try VStorPacket.decode(f.send([Guest.version(0x0402)])[0].payload)
        #expect(win7.status == 0 && f.primary.version == .win7)
    }

    @Test func outOfOrderPacketsGetInvalidDeviceState() throws {
        let f = fixture()
        for op in [VStorOperation.queryProtocolVersion, .queryProperties, .endInitialization, .executeSRB, .createSubChannels, .resetBus] {
            let reply = try VStorPacket.decode(f.send([Guest.control(op)])[0].payload)
            #expect(reply.status == NTStatus.invalidDeviceState.rawValue, "\(op)")
        }
        _ = try f.initializeLikeLinux()
        let again = try VStorPacket.decode(f.send([Guest.control(.beginInitialization)])[0].payload)
        #expect(again.status == NTStatus.invalidDeviceState.rawValue)
        #expect(try VStorPacket.decode(f.send([Guest.control(.resetBus)])[0].payload).status == 0)
    }

    @Test func subChannelsServeIOOnlyOnceThePrimaryIsReady() throws {
        let disk = try makeDisk()
        let f = fixture(units: [disk])
        let guest = FakeGuestChannel()
        let sub = ChannelSession(channel: 2, isPrimary: false, controller: f.controller, transport: guest,
                                 hooks: .init(offerSubChannels: { _ in false }, watch: { _, _ in true }, unwatch: { _ in }, log: { _ in }))
        guest.incoming = [Guest.srb([0, 0, 0, 0, 0, 0], id: 5)]
        sub.signalled()
        #expect(try VStorPacket.decode(guest.takeReplies()[0].payload).status == NTStatus.invalidDeviceState.rawValue)
        _ = try f.initializeLikeLinux()
        guest.incoming = [Guest.control(.beginInitialization), Guest.srb([0, 0, 0, 0, 0, 0], id: 6)]
        sub.signalled()
        let replies = guest.takeReplies()
        #expect(try VStorPacket.decode(replies[0].payload).status == NTStatus.invalidDeviceState.rawValue)
        #expect(try SRBCompletion(replies[1]).srb == 1 && replies[1].transactionID == 6)
    }

    @Test func windows7sShortRequestBlockGetsShortReplies() throws {
        let f = fixture(units: [try makeDisk()])
        _ = f.send([Guest.control(.beginInitialization), Guest.version(0x0402)])
        let properties = ChannelProperties(union: try VStorPacket.decode(f.send([Guest.control(.queryProperties)])[0].payload).union)
        #expect(!properties.supportsMultiChannel && properties.maxSubChannels == 0)
        _ = f.send([Guest.control(.endInitialization)])
        let replies = f.send([Guest.srb([0xC5, 0, 0, 0, 0, 0], requestSize: VMSCSIRequest.shortSize)])
        #expect(replies.count == 1 && replies[0].payload.count == 12 + 0x24)
        let packet = try VStorPacket.decode(replies[0].payload)
        let request = VMSCSIRequest(union: packet.union, size: VMSCSIRequest.shortSize)
        #expect(request.srbStatus == 0x84 && request.senseInfoLength == 18)
        #expect(SenseData.decode(Array(request.cdbOrSense.prefix(18)))?.additional == .invalidCommandOperationCode)
        // A Win8-sized request is still accepted (the extension is ignored), and answered at the guest's size.
        let long = f.send([Guest.srb([0, 0, 0, 0, 0, 0])])
        let longReply = try VStorPacket.decode(long[0].payload)
        #expect(long[0].payload.count == 64 && VMSCSIRequest(union: longReply.union, size: 0x24).srbStatus == 1)
    }

    // MARK: SCSI

    @Test func scanAnswersLikeAHyperVDisk() throws {
        let disk = try makeDisk(lun: 0, blocks: 4096)
        let f = fixture(units: [disk])
        try f.initializeLikeLinux()
        let b = Self.buffer
        // Standard INQUIRY, 36 bytes.
        var c = try f.srb(Guest.srb([0x12, 0, 0, 0, 36, 0], direction: .read, length: 36, gpa: b))
        #expect(c.srb == 1 && c.scsi == 0 && c.transferred == 36)
        let inquiry = f.guest.peek(b, 36)
        #expect(inquiry[0] == 0 && String(decoding: inquiry[8..<12], as: UTF8.self) == "Msft")
        #expect(String(decoding: inquiry[16..<28], as: UTF8.self) == "Virtual Disk")
        // REPORT LUNS.
        c = try f.srb(Guest.srb([0xA0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], direction: .read, length: 4096, gpa: b))
        #expect(c.transferred == 16 && ReportLUNsData.decode(f.guest.peek(b, 16)) == [0])
        // VPD 0x00 lists the pages, 0x80 the serial, 0x83 an NAA designator.
        c = try f.srb(Guest.srb([0x12, 1, 0, 0, 255, 0], direction: .read, length: 255, gpa: b))
        #expect(f.guest.peek(b, 10) == [0, 0, 0, 6, 0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2])
        c = try f.srb(Guest.srb([0x12, 1, 0x80, 0, 255, 0], direction: .read, length: 255, gpa: b))
        #expect(String(decoding: f.guest.peek(b + 4, 4), as: UTF8.self) == "SER0")
        c = try f.srb(Guest.srb([0x12, 1, 0x83, 0, 255, 0], direction: .read, length: 255, gpa: b))
        #expect(f.guest.peek(b + 4, 5) == [1, 3, 0, 16, f.guest.peek(b + 8, 1)[0]] && f.guest.peek(b + 8, 1)[0] >> 4 == 6)
        c = try f.srb(Guest.srb([0x12, 1, 0xB0, 0, 255, 0], direction: .read, length: 255, gpa: b))
        #expect(c.transferred == 64 && f.guest.peek(b + 8, 4) == [0, 0, 4, 0])   // 512 KiB / 512
        // READ CAPACITY(16) and (10).
        c = try f.srb(Guest.srb([0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], direction: .read, length: 32, gpa: b))
        #expect(f.guest.peek(b, 16) == [0, 0, 0, 0, 0, 0, 0x0F, 0xFF, 0, 0, 2, 0, 0, 3, 0, 0])
        c = try f.srb(Guest.srb([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], direction: .read, length: 8, gpa: b))
        #expect(f.guest.peek(b, 8) == [0, 0, 0x0F, 0xFF, 0, 0, 2, 0])
        // MODE SENSE(6) all pages: DPOFUA set, not write-protected, caching page with WCE.
        c = try f.srb(Guest.srb([0x1A, 0, 0x3F, 0, 192, 0], direction: .read, length: 192, gpa: b))
        let mode = f.guest.peek(b, c.transferred)
        #expect(mode[2] == 0x10 && mode[3] == 8 && mode[12] == 0x08 && mode[14] & 0x04 != 0)
        // TEST UNIT READY, START STOP UNIT, SYNCHRONIZE CACHE.
        #expect(try f.srb(Guest.srb([0, 0, 0, 0, 0, 0])).srb == 1)
        #expect(try f.srb(Guest.srb([0x1B, 0, 0, 0, 1, 0])).srb == 1)
        #expect(try f.srb(Guest.srb([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0])).srb == 1)
        // REQUEST SENSE: nothing pending.
        c = try f.srb(Guest.srb([0x03, 0, 0, 0, 18, 0], direction: .read, length: 18, gpa: b))
        #expect(c.transferred == 18 && f.guest.peek(b + 2, 1) == [0])
    }

    @Test func absentLUNsAnswerQualifier3AndInvalidLUN() throws {
        let f = fixture(units: [try makeDisk(lun: 2)])
        try f.initializeLikeLinux()
        let b = Self.buffer
        for (path, target, lun) in [(0, 0, 0), (0, 1, 0), (3, 0, 2), (0, 0, 64), (0, 5, 2)] as [(UInt8, UInt8, UInt8)] {
            let c = try f.srb(Guest.srb([0x12, 0, 0, 0, 36, 0], lun: lun, target: target, path: path, direction: .read, length: 36, gpa: b))
            #expect(c.srb == 1 && c.transferred == 36 && f.guest.peek(b, 1) == [0x7F])
            let tur = try f.srb(Guest.srb([0, 0, 0, 0, 0, 0], lun: lun, target: target, path: path))
            #expect(tur.srb == SRBStatus.invalidLUN.rawValue)
        }
        let c = try f.srb(Guest.srb([0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], direction: .read, length: 256, gpa: b))
        #expect(c.srb == 1 && ReportLUNsData.decode(f.guest.peek(b, 16)) == [2])
    }

    @Test func errorsCarrySenseKeys() throws {
        let f = fixture(units: [try makeDisk(blocks: 100), try makeDisk(lun: 1, readOnly: true)])
        try f.initializeLikeLinux()
        let b = Self.buffer
        func expectSense(_ p: IncomingPacket, _ key: SenseKey, _ asc: AdditionalSense, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let c = try f.srb(p)
            #expect(c.srb == 0x84 && c.scsi == 2 && c.transferred == 0, sourceLocation: sourceLocation)
            #expect(c.sense?.key == key && c.sense?.additional == asc, sourceLocation: sourceLocation)
            #expect(c.request.senseInfoLength == 18, sourceLocation: sourceLocation)
        }
        try expectSense(Guest.srb([0xC5, 0, 0, 0, 0, 0]), .illegalRequest, .invalidCommandOperationCode)
        try expectSense(Guest.srb([0x12, 1, 0x99, 0, 255, 0], direction: .read, length: 255, gpa: b), .illegalRequest, .invalidFieldInCDB)
        try expectSense(Guest.srb([0x1A, 0, 0x1C, 0, 192, 0], direction: .read, length: 192, gpa: b), .illegalRequest, .invalidFieldInCDB)
        try expectSense(Guest.srb([0x28, 0, 0, 0, 0, 99, 0, 0, 2, 0], direction: .read, length: 1024, gpa: b), .illegalRequest, .lbaOutOfRange)
        try expectSense(Guest.srb([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], lun: 1, direction: .write, length: 512, gpa: b), .dataProtect, .writeProtected)
        try expectSense(Guest.srb([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], direction: .write, length: 24, gpa: b), .illegalRequest, .invalidCommandOperationCode)
        // A read whose buffer is shorter than the blocks it asks for.
        try expectSense(Guest.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 4, 0], direction: .read, length: 1024, gpa: b), .illegalRequest, .invalidFieldInCDB)
        // The read-only LUN's mode header says WP.
        let c = try f.srb(Guest.srb([0x1A, 0, 0x3F, 0, 192, 0], lun: 1, direction: .read, length: 192, gpa: b))
        #expect(f.guest.peek(b + 2, 1)[0] & 0x80 != 0 && c.srb == 1)
    }

    @Test func writesAndReadsRoundTripAtEveryCDBSize() throws {
        let disk = try makeDisk(blocks: 1 << 12, fill: { UInt8(truncatingIfNeeded: $0 / 512) })
        let f = fixture(units: [disk])
        try f.initializeLikeLinux()
        let b = Self.buffer
        let pattern = (0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        f.guest.poke(b, pattern)
        let writes: [[UInt8]] = [
            [0x0A, 0, 0, 16, 16, 0],
            [0x2A, 0x08, 0, 0, 0, 64, 0, 0, 16, 0],
            [0xAA, 0, 0, 0, 0, 128, 0, 0, 0, 16, 0, 0],
            [0x8A, 0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 16, 0, 0],
        ]
        let reads = writes.map { cdb -> [UInt8] in
            var r = cdb
            r[0] = [0x0A: 0x08, 0x2A: 0x28, 0xAA: 0xA8, 0x8A: 0x88][cdb[0]] ?? 0
            r[1] = 0
            return r
        }
        for (w, r) in zip(writes, reads) {
            f.guest.poke(b, pattern)
            let wc = try f.srb(Guest.srb(w, direction: .write, length: 8192, gpa: b))
            #expect(wc.srb == 1 && wc.transferred == 8192)
            f.guest.poke(b, [UInt8](repeating: 0xEE, count: 8192))
            let rc = try f.srb(Guest.srb(r, direction: .read, length: 8192, gpa: b))
            #expect(rc.srb == 1 && rc.transferred == 8192)
            #expect(f.guest.peek(b, 8192) == pattern, "CDB \(w[0])")
        }
        // The untouched block 1 still holds what the image had, read through READ(10).
        _ = try f.srb(Guest.srb([0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0], direction: .read, length: 512, gpa: b))
        #expect(f.guest.peek(b, 512) == [UInt8](repeating: 1, count: 512))
        // The file holds the data at the right offset.
        let file = try Data(contentsOf: URL(fileURLWithPath: disk.1))
        #expect(Array(file[64 * 512..<64 * 512 + 8192]) == pattern)
    }

    @Test func unmapAndWriteSameZero() throws {
        let disk = try makeDisk(blocks: 256, discard: true, fill: { _ in 0xAB })
        let f = fixture(units: [disk])
        try f.initializeLikeLinux()
        let b = Self.buffer
        f.guest.poke(b, UnmapParameterList(descriptors: [.init(lba: 4, blocks: 2), .init(lba: 10, blocks: 1)]).encode())
        let u = try f.srb(Guest.srb([0x42, 0, 0, 0, 0, 0, 0, 0, 40, 0], direction: .write, length: 40, gpa: b))
        #expect(u.srb == 1)
        f.guest.poke(b + 0x1000, [UInt8](repeating: 0, count: 512))
        let ws = try f.srb(Guest.srb([0x93, 0x08, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0], direction: .write, length: 512, gpa: b + 0x1000))
        #expect(ws.srb == 1)
        let file = try Data(contentsOf: URL(fileURLWithPath: disk.1))
        #expect(file[4 * 512] == 0 && file[6 * 512] == 0xAB && file[10 * 512] == 0 && file[11 * 512] == 0xAB)
        #expect(file[20 * 512..<23 * 512].allSatisfy { $0 == 0 } && file[23 * 512] == 0xAB)
        // A non-zero pattern is refused, not written as zeros.
        f.guest.poke(b + 0x1000, [1])
        let bad = try f.srb(Guest.srb([0x93, 0, 0, 0, 0, 0, 0, 0, 0, 30, 0, 0, 0, 1, 0, 0], direction: .write, length: 512, gpa: b + 0x1000))
        #expect(bad.sense?.additional == .invalidFieldInParameterList)
        #expect(try Data(contentsOf: URL(fileURLWithPath: disk.1))[30 * 512] == 0xAB)
    }

    @Test func cdromAnswersMMCBasics() throws {
        let path = try TestImages.temporaryFile(size: 2048 * 64, fill: { UInt8(truncatingIfNeeded: $0 / 2048) })
        let image = try PlainRawImage(path: path, readOnly: true, logicalBlockSize: 512, physicalBlockSize: 2048)
        let cd = LogicalUnit(kind: .cdrom, target: 0, lun: 0, image: image, readOnly: true, serial: "CD", naaIdentifier: [], maxTransferBytes: 1 << 19)
        let f = fixture(units: [(cd, path)])
        try f.initializeLikeLinux()
        let b = Self.buffer
        _ = try f.srb(Guest.srb([0x12, 0, 0, 0, 36, 0], direction: .read, length: 36, gpa: b))
        #expect(f.guest.peek(b, 2) == [5, 0x80])
        _ = try f.srb(Guest.srb([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], direction: .read, length: 8, gpa: b))
        #expect(f.guest.peek(b, 8) == [0, 0, 0, 63, 0, 0, 8, 0])
        let r = try f.srb(Guest.srb([0x28, 0, 0, 0, 0, 3, 0, 0, 1, 0], direction: .read, length: 2048, gpa: b))
        #expect(r.srb == 1 && f.guest.peek(b, 2048).allSatisfy { $0 == 3 })
        _ = try f.srb(Guest.srb([0x43, 0, 0, 0, 0, 0, 1, 0, 20, 0], direction: .read, length: 20, gpa: b))
        #expect(f.guest.peek(b, 4) == [0, 18, 1, 1] && f.guest.peek(b + 14, 1) == [0xAA] && f.guest.peek(b + 16, 4) == [0, 0, 0, 64])
        _ = try f.srb(Guest.srb([0x46, 0, 0, 0, 0, 0, 0, 0, 64, 0], direction: .read, length: 64, gpa: b))
        #expect(f.guest.peek(b + 6, 2) == [0, 0x10])
        _ = try f.srb(Guest.srb([0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8, 0], direction: .read, length: 8, gpa: b))
        #expect(f.guest.peek(b, 8) == [0, 6, 4, 0x10, 0, 2, 0, 0])
        _ = try f.srb(Guest.srb([0x5A, 0, 0x2A, 0, 0, 0, 0, 0, 64, 0], direction: .read, length: 64, gpa: b))
        #expect(f.guest.peek(b + 8, 1) == [0x2A])
        let w = try f.srb(Guest.srb([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], direction: .write, length: 2048, gpa: b))
        #expect(w.sense?.key == .illegalRequest)
    }

    // MARK: Hostile packets

    @Test func badPacketsAreDroppedOrRefusedNeverTrusted() throws {
        let f = fixture(units: [try makeDisk()])
        try f.initializeLikeLinux()
        let b = Self.buffer
        // Wrong VMBus types and short payloads: dropped and counted.
        _ = f.send([IncomingPacket(type: 11, flags: 0, transactionID: 9, payload: [UInt8](repeating: 0, count: 64), segments: []),
                    IncomingPacket(type: 6, flags: 1, transactionID: 9, payload: [3, 0, 0], segments: [])])
        #expect(f.primary.counters.dropped == 2)
        // An unknown operation and a host-only one.
        for op: UInt32 in [0, 99, 1, 11] {
            let reply = f.send([IncomingPacket(type: 6, flags: 1, transactionID: 4, payload: VStorPacket(rawOperation: op, flags: 1, status: 0, union: []).encode(), segments: [])])
            #expect(try VStorPacket.decode(reply[0].payload).status == NTStatus.invalidDeviceRequest.rawValue)
        }
        // A truncated EXECUTE_SRB.
        var p = Guest.srb([0, 0, 0, 0, 0, 0])
        p.payload = Array(p.payload.prefix(40))
        #expect(try f.srb(p).srb == SRBStatus.invalidRequest.rawValue)
        // CDB length 0 and 17.
        for length: UInt8 in [0, 17] {
            var q = Guest.srb([0, 0, 0, 0, 0, 0])
            q.payload[12 + 8] = length
            #expect(try f.srb(q).srb == SRBStatus.invalidRequest.rawValue)
        }
        // Data length larger than the segments, data on an in-band packet, a bad direction, a GPA outside RAM, over the max transfer.
        var short = Guest.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], direction: .read, length: 512, gpa: b)
        short.segments = [GuestSegmentRange(gpa: b, length: 256)]
        #expect(try f.srb(short).srb == SRBStatus.invalidRequest.rawValue)
        #expect(try f.srb(Guest.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], direction: .read, length: 512)).srb == SRBStatus.invalidRequest.rawValue)
        var direction = Guest.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], direction: .read, length: 512, gpa: b)
        direction.payload[12 + 10] = 7
        #expect(try f.srb(direction).srb == SRBStatus.invalidRequest.rawValue)
        #expect(try f.srb(Guest.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], direction: .read, length: 512, gpa: 0xFFFF_F000)).srb == SRBStatus.invalidRequest.rawValue)
        #expect(try f.srb(Guest.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], direction: .read, length: 512, gpa: 0x10_0000 + (4 << 20) - 256)).srb == SRBStatus.invalidRequest.rawValue)
        #expect(try f.srb(Guest.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], direction: .read, length: 1 << 20, gpa: b)).srb == SRBStatus.invalidRequest.rawValue)
        #expect(f.primary.counters.badBuffers == 3, "short segments, outside RAM, past RAM")
        // A GPA-direct control packet.
        var gpa = Guest.control(.queryProperties)
        gpa.type = 9
        #expect(try VStorPacket.decode(f.send([gpa])[0].payload).status == NTStatus.invalidParameter.rawValue)
    }

    @Test func aFullRingHoldsRepliesUntilTheGuestMakesRoomAndABrokenRingStops() throws {
        let f = fixture(units: [try makeDisk()])
        try f.initializeLikeLinux()
        f.guest.room = 2
        _ = f.send((0..<5).map { Guest.srb([0, 0, 0, 0, 0, 0], id: UInt64(10 + $0)) })
        #expect(f.primary.repliesWaiting == 3)
        f.guest.room = nil
        f.primary.signalled()
        let ids = f.guest.takeReplies().map(\.transactionID)
        #expect(ids == [12, 13, 14])
        f.guest.broken = true
        f.guest.incoming = [Guest.srb([0, 0, 0, 0, 0, 0], id: 20)]
        f.primary.signalled()
        #expect(f.primary.broken && f.guest.replies.isEmpty)
    }

    @Test func hotRemoveFailsIOWithInvalidLUNAndHotAddAnnounces() throws {
        let first = try makeDisk(lun: 0), second = try makeDisk(lun: 3)
        let f = fixture(units: [first])
        defer { unlink(second.1) }
        try f.initializeLikeLinux()
        #expect(f.controller.update { $0.detach(target: 0, lun: 0) != nil })
        #expect(try f.srb(Guest.srb([0, 0, 0, 0, 0, 0])).srb == SRBStatus.invalidLUN.rawValue)
        #expect(f.controller.update { map in map.attach(second.0); return true })
        f.primary.announceBusChange()
        let announce = f.guest.takeReplies()
        #expect(announce.count == 1 && announce[0].type == 6 && announce[0].transactionID == 0)
        #expect(try VStorPacket.decode(announce[0].payload).operation == VStorOperation.enumerateBus.rawValue)
        #expect(try f.srb(Guest.srb([0, 0, 0, 0, 0, 0], lun: 3)).srb == 1)
    }

    @Test func manyRequestsInFlightAcrossChannelsKeepTheirTransactionIDs() throws {
        let disk = try makeDisk(blocks: 4096)
        let f = fixture(units: [disk], depth: 16)
        try f.initializeLikeLinux()
        let subs = (0..<3).map { i -> (ChannelSession, FakeGuestChannel) in
            let g = FakeGuestChannel()
            return (ChannelSession(channel: UInt32(2 + i), isPrimary: false, controller: f.controller, transport: g,
                                   hooks: .init(offerSubChannels: { _ in false }, watch: { _, _ in true }, unwatch: { _ in }, log: { _ in })), g)
        }
        let channels = [(f.primary, f.guest)] + subs
        for (index, (session, guest)) in channels.enumerated() {
            for n in 0..<40 {
                let lba = UInt8(index * 40 + n)
                let gpa = 0x10_0000 + UInt64(n) * 512
                guest.poke(gpa, [UInt8](repeating: lba, count: 512))
                guest.incoming.append(Guest.srb([0x2A, 0, 0, 0, 0, lba, 0, 0, 1, 0], direction: .write, length: 512, gpa: gpa, id: UInt64(1000 * index + n)))
            }
            session.signalled()
            let expected: Set<UInt64> = Set((0..<40).map { (n: Int) -> UInt64 in UInt64(1000 * index + n) })
            #expect(Set(guest.takeReplies().map(\.transactionID)) == expected)
        }
        let file = try Data(contentsOf: URL(fileURLWithPath: disk.1))
        let bytes = [UInt8](file)
        let written = (0..<160).filter { (n: Int) -> Bool in
            let block = bytes[(n * 512)..<(n * 512 + 512)]
            return block.allSatisfy { $0 == UInt8(n) }
        }
        #expect(written.count == 160)
    }
}

extension ChannelFixture {
    func initializeLikeLinux(afterBegin: Bool) throws -> (version: UInt16, properties: ChannelProperties) {
        precondition(afterBegin)
        for v: UInt16 in [0x602, 0x600, 0x501] {
            let replies = send([Guest.version(v)])
            if try VStorPacket.decode(replies[0].payload).status == 0 {
                let props = send([Guest.control(.queryProperties)])
                _ = send([Guest.control(.endInitialization)])
                return (v, ChannelProperties(union: try VStorPacket.decode(props[0].payload).union))
            }
        }
        throw CocoaError(.featureUnsupported)
    }
}
