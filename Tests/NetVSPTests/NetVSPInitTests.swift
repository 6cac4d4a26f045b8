import Foundation
import NVSPProtocol
import RNDISProtocol
import Testing
import VeneerHarness
import VeneerHost
import VeneerPluginABI

/// Linux's netvsc bring-up through the harness's fake VMBus, the test playing the guest.
@Suite("netvsp bring-up")
struct NetVSPInitTests {
    static let nicType: [UInt8] = [0x63, 0x51, 0x61, 0xf8, 0x3e, 0xdf, 0xc5, 0x46, 0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e]

    @Test func offersTheSyntheticNICClass() throws {
        let g = try NetVSCGuest()
        let offer = try #require(g.h.host.offers[g.primary])
        #expect(offer.interfaceType == Self.nicType && g.h.library.info.kind == .synthetic)
    }

    @Test(arguments: [NVSPVersion.v61, .v6, .v5, .v4, .v2])
    func linuxsSequenceAtEachVersion(_ version: NVSPVersion) throws {
        let g = try NetVSCGuest()
        // Linux walks down from 6.1; a guest that only speaks `version` starts there.
        try g.connect(versions: [NVSPVersion.v61, .v6, .v5, .v4, .v2].filter { $0 <= version })
        #expect(g.version == version)
        let queues = try g.rndisSetUp()
        #expect(queues == (version >= .v5 ? 4 : 0), "RSS is offered from NVSP 5, one queue per vCPU")
        let status = try g.status()
        #expect(status["rndis"] as? Bool == true && status["packetFilter"] as? Int == 0x0D && status["link"] as? String == "up")
        #expect(g.h.host.errors.isEmpty)
    }

    @Test func repliesArePaddedAsLinuxChecksThem() throws {
        let g = try NetVSCGuest()
        g.h.openChannel(g.primary)
        let old = try #require(g.nvsp(.initialize(minimum: NVSPVersion.v5.rawValue, maximum: NVSPVersion.v5.rawValue)))
        #expect(old.count == 28)
        let g2 = try NetVSCGuest()
        g2.h.openChannel(g2.primary)
        let new = try #require(g2.nvsp(.initialize(minimum: NVSPVersion.v61.rawValue, maximum: NVSPVersion.v61.rawValue)))
        #expect(new.count == 40)
        // NVSP 1 (0x2) and anything unknown are refused.
        let g3 = try NetVSCGuest()
        g3.h.openChannel(g3.primary)
        let refused = try #require(g3.nvsp(.initialize(minimum: 2, maximum: 2)))
        #expect(le32(refused, 12) != 1)
    }

    @Test func subChannelsUpToTheVCPUsAndMaxQueues() throws {
        let g = try NetVSCGuest(parameters: ["max_queues": .int(3)], vcpus: 8)
        try g.connect()
        #expect(try g.rndisSetUp() == 3)
        #expect(try g.openSubchannels(7) == 2, "three queues at most: two sub-channels")
        #expect(try g.status()["channels"] as? Int == 3)
        // Asking again grants nothing more.
        let again = try #require(g.nvsp(.subchannel(operation: 1, count: 4)))
        #expect(le32(again, 4) == 1 && le32(again, 8) == 0)
    }

    @Test func linkIndicationsFollowTheManagementOverride() throws {
        let g = try NetVSCGuest()
        try g.connect()
        try g.rndisSetUp()
        #expect(try g.controlOp(#"{"op":"link","up":false}"#).status == veneer_status(VENEER_OK))
        let down = try g.receive(channel: g.primary)
        #expect(down.count == 1 && down[0].type == 7 && le32(down[0].bytes, 8) == RNDISStatus.mediaDisconnect)
        #expect(try g.query(RNDISOID.mediaConnectStatus).info == bytesLE32(1))
        #expect(try g.controlOp(#"{"op":"link","up":true}"#).status == veneer_status(VENEER_OK))
        let up = try g.receive(channel: g.primary)
        #expect(up.count == 1 && le32(up[0].bytes, 8) == RNDISStatus.mediaConnect)
        #expect(try g.controlOp(#"{"op":"frobnicate"}"#).status != veneer_status(VENEER_OK))
    }

    @Test func keepaliveResetAndHalt() throws {
        let g = try NetVSCGuest()
        try g.connect()
        try g.rndisSetUp()
        let keepalive = try g.control(.keepalive(requestID: 77))
        #expect(le32(keepalive, 0) == 0x8000_0008 && le32(keepalive, 8) == 77 && le32(keepalive, 12) == 0)
        let reset = try g.control(.reset)
        #expect(le32(reset, 0) == 0x8000_0006 && le32(reset, 8) == 0)
        let unknown = try g.query(0x0DEAD_BEEF)
        #expect(unknown.status == RNDISStatus.notSupported && unknown.info.isEmpty)
        // Halt has no answer and stops receive traffic.
        let bytes = RNDISRequest.halt(requestID: 5).encoded()
        try g.h.writeGuest(bytes, at: NetVSCGuest.sendGPA)
        let done = try #require(g.nvsp(.rndisPacket(channelType: 1, sectionIndex: 0, sectionSize: UInt32(bytes.count))))
        #expect(le32(done, 4) == 1)
        #expect(try g.receive(channel: g.primary).isEmpty)
        #expect(try g.status()["rndis"] as? Bool == false)
    }

    @Test func defaultMACIsStablePerVMAndNIC() throws {
        func mac(_ vm: String) throws -> [UInt8] {
            let g = try NetVSCGuest(vmName: vm)
            try g.connect()
            try g.rndisSetUp()
            return try g.query(RNDISOID.permanentAddress).info
        }
        let a = try mac("alpha"), again = try mac("alpha"), b = try mac("beta")
        #expect(a == again && a != b && a.prefix(3) == [0x00, 0x15, 0x5D])
        let given = try NetVSCGuest(parameters: ["mac": .string("02:11:22:33:44:55")])
        try given.connect()
        try given.rndisSetUp()
        #expect(try given.query(RNDISOID.permanentAddress).info == [0x02, 0x11, 0x22, 0x33, 0x44, 0x55])
    }

    @Test func badConfigsAreRefusedNamingTheParameter() throws {
        func failure(_ parameters: [String: ParameterValidation.Input]) -> String {
            do {
                _ = try PluginHarness(plugin: "netvsp", parameters: parameters)
                return ""
            } catch { return "\(error)" }
        }
        #expect(failure([:]).contains("fds"))
        #expect(failure(["fds": .string("x")]).contains("'x'"))
        #expect(failure(["fds": .string("9999")]).contains("9999"))
        let port = try PortEnd()
        #expect(failure(["fds": .string("\(port.pluginFD)"), "mac": .string("zz")]).contains("mac"))
        #expect(failure(["fds": .string("\(port.pluginFD)"), "mac": .string("01:00:00:00:00:01")]).contains("multicast"))
        #expect(failure(["fds": .string("\(port.pluginFD)"), "mtu": .int(9001)]) != "")
    }
}
