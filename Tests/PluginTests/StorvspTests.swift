import Foundation
import Testing
import VeneerHarness
import VeneerHost

/// The storvsp plugin as the host loads it: its parameters, the disk group, and the offer.
@Suite("storvsp plugin")
struct StorvspPluginTests {
    static let scsiType: [UInt8] = [0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f]

    static func image(_ size: Int) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("storvsp-\(UUID().uuidString).img").path
        guard FileManager.default.createFile(atPath: path, contents: Data(count: size)) else { throw CocoaError(.fileWriteUnknown) }
        return path
    }

    @Test func offersTheSyntheticSCSIControllerWithAStableInstance() throws {
        let disk = try Self.image(1 << 20)
        defer { unlink(disk) }
        let h = try PluginHarness(plugin: "storvsp", parameters: [
            "disk": .group([["lun": .int(0), "path": .string(disk)], ["lun": .int(1), "path": .string(""), "type": .string("cdrom")]]),
        ])
        #expect(h.library.info.kind == .synthetic)
        let offer = try #require(h.host.offers.values.first)
        #expect(h.host.offers.count == 1 && offer.interfaceType == Self.scsiType)
        let again = try PluginHarness(plugin: "storvsp")
        #expect(again.host.offers.values.first?.interfaceInstance == offer.interfaceInstance,
                "the default instance comes from the device id, so it is the same on every boot")
        let given = try PluginHarness(plugin: "storvsp", parameters: ["instance": .string("00112233-4455-6677-8899-aabbccddeeff")])
        #expect(given.host.offers.values.first?.interfaceInstance == [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
                                                                      0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
    }

    @Test func badDisksAreRefusedNamingDeviceLUNAndFile() throws {
        let disk = try Self.image(4096)
        defer { unlink(disk) }
        func failure(_ parameters: [String: ParameterValidation.Input]) -> String {
            do {
                _ = try PluginHarness(plugin: "storvsp", parameters: parameters)
                return ""
            } catch { return "\(error)" }
        }
        let missing = failure(["disk": .group([["lun": .int(3), "path": .string("/nonexistent/x.img")]])])
        #expect(missing.contains("LUN 3") && missing.contains("/nonexistent/x.img"))
        let twice = failure(["disk": .group([["lun": .int(2), "path": .string(disk)], ["lun": .int(2), "path": .string(disk)]])])
        #expect(twice.contains("two disks at target 0 LUN 2"))
        let odd = try Self.image(1000)
        defer { unlink(odd) }
        #expect(failure(["disk": .group([["lun": .int(0), "path": .string(odd)]])]).contains("not a multiple"))
        #expect(failure(["disk": .group([["lun": .int(0), "path": .string("")]])]).contains("needs a path"))
        #expect(failure(["max_transfer_bytes": .int(4097)]).contains("multiple of 4096"))
        #expect(failure(["disk": .group([["lun": .int(64), "path": .string(disk)]])]) != "", "LUN 64 is outside the schema")
    }
}

/// The storvsp protocol through the harness's fake VMBus, the test playing Linux's storvsc.
@Suite("storvsp over VMBus")
struct StorvspVMBusTests {
    static let initID: UInt64 = .max - 2
    static let buffer: UInt64 = 0x20_0000

    /// A vstor packet: operation, flags (completion requested), status 0, then the union.
    static func vstor(_ operation: UInt32, union: [UInt8] = []) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64)
        bytes[0] = UInt8(operation)
        bytes[4] = 1
        for (i, b) in union.prefix(52).enumerated() { bytes[12 + i] = b }
        return bytes
    }

    /// An EXECUTE_SRB union: LUN, CDB, direction (0 write, 1 read, 2 none) and transfer length.
    static func srb(_ cdb: [UInt8], lun: UInt8 = 0, direction: UInt8 = 2, length: UInt32 = 0) -> [UInt8] {
        var union = [UInt8](repeating: 0, count: 0x34)
        union[0] = 0x34
        union[7] = lun
        union[8] = UInt8(cdb.count)
        union[9] = 0x14
        union[10] = direction
        withUnsafeBytes(of: length.littleEndian) { for (i, b) in $0.enumerated() { union[12 + i] = b } }
        for (i, b) in cdb.enumerated() { union[16 + i] = b }
        return vstor(3, union: union)
    }

    static func status(_ packet: FakeHost.Packet) -> UInt32 {
        UInt32(packet.payload[8]) | UInt32(packet.payload[9]) << 8 | UInt32(packet.payload[10]) << 16 | UInt32(packet.payload[11]) << 24
    }

    /// The reply's SRB status, SCSI status and transferred length.
    static func outcome(_ packet: FakeHost.Packet) -> (srb: UInt8, scsi: UInt8, transferred: UInt32) {
        let p = packet.payload
        return (p[14], p[15], UInt32(p[24]) | UInt32(p[25]) << 8 | UInt32(p[26]) << 16 | UInt32(p[27]) << 24)
    }

    /// Polls the engines' eventfds until `channel` has `count` replies (libaio completes later).
    func awaitReplies(_ h: PluginHarness, channel: UInt32, count: Int) {
        for _ in 0..<200 where h.host.packetsFromDevice(channel: channel).count < count {
            _ = h.pollFDs(timeoutMilliseconds: 50)
        }
    }

    func harness(disk: String, vcpus: UInt32 = 4) throws -> PluginHarness {
        let h = try PluginHarness(plugin: "storvsp", parameters: ["disk": .group([["lun": .int(0), "path": .string(disk), "cache": .string("writeback")]])],
                                  vcpuCount: vcpus)
        h.host.machineFacts = MachineFacts(vcpuCount: vcpus, ramBytes: 16 << 20, memoryMap: [])
        return h
    }

    @Test func linuxsSequenceSubChannelsAndIOOnEveryChannel() throws {
        let disk = try StorvspPluginTests.image(1 << 20)
        defer { unlink(disk) }
        let h = try harness(disk: disk)
        let primary = try #require(h.host.offers.keys.first)
        h.openChannel(primary, userData: [UInt8](repeating: 0, count: 24))
        h.send([FakeHost.Packet(flags: 1, transactionID: Self.initID, payload: Self.vstor(7)),
                FakeHost.Packet(flags: 1, transactionID: Self.initID, payload: Self.vstor(9, union: [0x02, 0x06, 0, 0])),
                FakeHost.Packet(flags: 1, transactionID: Self.initID, payload: Self.vstor(10)),
                FakeHost.Packet(flags: 1, transactionID: Self.initID, payload: Self.vstor(8))], channel: primary)
        let replies = h.host.packetsFromDevice(channel: primary)
        #expect(replies.count == 4 && replies.allSatisfy { $0.type == 11 && $0.transactionID == Self.initID && $0.payload.count == 64 })
        #expect(replies.map(Self.status) == [0, 0, 0, 0])
        let properties = Array(replies[2].payload[12..<36])
        #expect(properties[4] == 3 && properties[8] & 1 == 1 && properties[12...15] == [0, 0, 8, 0], "3 sub-channels, multi-channel, 512 KiB")
        h.send([FakeHost.Packet(flags: 1, transactionID: Self.initID, payload: Self.vstor(13, union: [3, 0]))], channel: primary)
        #expect(Self.status(h.host.packetsFromDevice(channel: primary)[4]) == 0)
        let subs = h.host.offers.keys.filter { $0 != primary }.sorted()
        #expect(subs.count == 3)
        // A write on each sub-channel, read back on the primary.
        for (n, sub) in subs.enumerated() {
            h.openChannel(sub)
            let gpa = Self.buffer + UInt64(n) * 0x1000
            try h.writeGuest([UInt8](repeating: UInt8(0xA0 + n), count: 4096), at: gpa)
            h.sendGPADirect(channel: sub, transactionID: UInt64(100 + n), gpa: gpa, length: 4096,
                            payload: Self.srb([0x2A, 0, 0, 0, 0, UInt8(8 * n), 0, 0, 8, 0], direction: 0, length: 4096))
            awaitReplies(h, channel: sub, count: 1)
            let done = try #require(h.host.packetsFromDevice(channel: sub).last)
            #expect(done.transactionID == UInt64(100 + n) && Self.outcome(done).srb == 1 && Self.outcome(done).transferred == 4096)
        }
        h.sendGPADirect(channel: primary, transactionID: 7, gpa: Self.buffer + 0x10000, length: 3 * 4096,
                        payload: Self.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 24, 0], direction: 1, length: 3 * 4096))
        awaitReplies(h, channel: primary, count: 6)
        let read = try #require(h.host.packetsFromDevice(channel: primary).last)
        #expect(read.transactionID == 7 && Self.outcome(read) == (1, 0, 12288))
        let back = try h.readGuest(Self.buffer + 0x10000, count: 3 * 4096)
        #expect((0..<3).allSatisfy { n in back[(n * 4096)..<((n + 1) * 4096)].allSatisfy { $0 == UInt8(0xA0 + n) } })
        // Closing the primary closes its sub-channels; reopening starts over.
        h.closeChannel(primary)
        h.openChannel(primary)
        h.send([FakeHost.Packet(flags: 1, transactionID: 9, payload: Self.srb([0, 0, 0, 0, 0, 0]))], channel: primary)
        #expect(Self.status(try #require(h.host.packetsFromDevice(channel: primary).last)) == 0xC000_0184, "not initialized again yet")
    }

    func initialize(_ h: PluginHarness, _ channel: UInt32) {
        h.send([FakeHost.Packet(flags: 1, transactionID: Self.initID, payload: Self.vstor(7)),
                FakeHost.Packet(flags: 1, transactionID: Self.initID, payload: Self.vstor(9, union: [0x01, 0x05, 0, 0])),
                FakeHost.Packet(flags: 1, transactionID: Self.initID, payload: Self.vstor(8))], channel: channel)
    }

    @Test func hostileGPADirectRangesAreRefusedAndABrokenRingWaitsForReopen() throws {
        let disk = try StorvspPluginTests.image(1 << 20)
        defer { unlink(disk) }
        let h = try harness(disk: disk, vcpus: 1)
        let primary = try #require(h.host.offers.keys.first)
        h.openChannel(primary)
        initialize(h, primary)
        #expect(h.host.packetsFromDevice(channel: primary).map(Self.status) == [0, 0, 0])
        // A range shorter than the transfer, and a transfer over max_transfer_bytes: refused.
        h.send([PluginHarness.gpaDirectPacket(transactionID: 2, ranges: [PluginHarness.guestRange(gpa: Self.buffer, length: 256)],
                                              payload: Self.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], direction: 1, length: 512)),
                PluginHarness.gpaDirectPacket(transactionID: 3, ranges: [PluginHarness.guestRange(gpa: Self.buffer, length: 1 << 20)],
                                              payload: Self.srb([0x28, 0, 0, 0, 0, 0, 0, 8, 0, 0], direction: 1, length: 1 << 20))],
               channel: primary)
        let refused = Array(h.host.packetsFromDevice(channel: primary).dropFirst(3))
        #expect(refused.map(\.transactionID) == [2, 3])
        #expect(refused.allSatisfy { Self.outcome($0).srb == 0x06 && Self.outcome($0).transferred == 0 })
        // A range outside guest RAM: the host declares the ring unusable; the VSP stops reading
        // (the TEST UNIT READY behind it gets no answer) until the guest reopens the channel.
        h.send([PluginHarness.gpaDirectPacket(transactionID: 4, ranges: [PluginHarness.guestRange(gpa: 0x7_0000_0000, length: 512)],
                                              payload: Self.srb([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], direction: 1, length: 512)),
                FakeHost.Packet(flags: 1, transactionID: 5, payload: Self.srb([0, 0, 0, 0, 0, 0]))], channel: primary)
        #expect(h.host.packetsFromDevice(channel: primary).count == 5)
        h.closeChannel(primary)
        h.openChannel(primary)
        initialize(h, primary)
        h.send([FakeHost.Packet(flags: 1, transactionID: 6, payload: Self.srb([0, 0, 0, 0, 0, 0]))], channel: primary)
        let last = try #require(h.host.packetsFromDevice(channel: primary).last)
        #expect(last.transactionID == 6 && Self.outcome(last).srb == 1)
    }
}

/// An image made by qemu-img, written by the guest through storvsp, read back by qemu-img.
@Suite("storvsp images and qemu-img")
struct StorvspQemuImageTests {
    @Test(arguments: ["raw", "vhdx"])
    func aGuestsWritesReadBackIdenticallyWithQemuImg(format: String) throws {
        guard (try? TestSupport.run("qemu-img", ["--version"]))?.status == 0 else {
            print("SKIPPED: qemu-img is not installed (scripts/setup installs qemu-utils)")
            return
        }
        let directory = try TestSupport.temporaryDirectory("storvsp-\(format)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let image = directory + "/disk.\(format)", raw = directory + "/back.raw"
        let created = try TestSupport.run("qemu-img", ["create", "-q", "-f", format, image, "16M"])
        #expect(created.status == 0, "\(created.stderr)")
        let t = StorvspVMBusTests()
        let pattern = (0..<(64 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        do {
            let h = try PluginHarness(plugin: "storvsp", parameters: [
                "disk": .group([["lun": .int(0), "path": .string(image), "cache": .string("writeback")]])])
            let primary = try #require(h.host.offers.keys.first)
            h.openChannel(primary)
            t.initialize(h, primary)
            try h.writeGuest(pattern, at: StorvspVMBusTests.buffer)
            // 64 KiB at LBA 2048 (1 MiB in: a new block of a dynamic VHDX), then SYNCHRONIZE CACHE.
            h.sendGPADirect(channel: primary, transactionID: 1, gpa: StorvspVMBusTests.buffer, length: pattern.count,
                            payload: StorvspVMBusTests.srb([0x2A, 0, 0, 0, 0x08, 0, 0, 0, 128, 0], direction: 0, length: UInt32(pattern.count)))
            t.awaitReplies(h, channel: primary, count: 4)
            h.send([FakeHost.Packet(flags: 1, transactionID: 2, payload: StorvspVMBusTests.srb([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]))], channel: primary)
            t.awaitReplies(h, channel: primary, count: 5)
            let replies = h.host.packetsFromDevice(channel: primary).suffix(2)
            #expect(replies.map { StorvspVMBusTests.outcome($0).srb } == [1, 1])
        }
        if format != "raw" {
            let check = try TestSupport.run("qemu-img", ["check", "-f", format, image])
            #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        }
        let converted = try TestSupport.run("qemu-img", ["convert", "-f", format, "-O", "raw", image, raw])
        #expect(converted.status == 0, "\(converted.stderr)")
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
        #expect(bytes.count == 16 << 20)
        #expect(Array(bytes[(1 << 20)..<((1 << 20) + pattern.count)]) == pattern)
        #expect(bytes[0..<(1 << 20)].allSatisfy { $0 == 0 })
    }
}
