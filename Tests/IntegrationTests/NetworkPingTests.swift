import Foundation
import Testing

/// examples/network.toml's setup in a namespace of its own: an internal switch (the host at
/// 10.99.0.1) and the netvsc test guest (examples/guests/netvsc, the responder) through the
/// netvsp plugin. The guest checks Linux's bring-up itself; from the host, the real `ping`
/// (100 echo requests, no loss) and `arping` (the guest's MAC) must reach it.
@Suite(.serialized, .enabled("SKIPPED: network tests need /dev/kvm, CAP_NET_ADMIN and ip") { NetworkTestHost.canRun })
struct NetworkPingTests {
    @Test(.timeLimit(.minutes(15)))
    func hostPingsAndArpingsTheGuestOnAnInternalSwitch() throws {
        let scratch = try NetworkScratch()
        let ns = try NetworkNamespace()
        defer { ns.close() }
        let bridge = "vsw\(NetworkTestHost.suffix().prefix(6))"
        try ns.createSwitch(bridge, type: "internal", address: "10.99.0.1/24")

        let guest = try NetworkGuest(ns, name: "ping-guest", image: "netvsc.bin", switchName: bridge,
                                     mac: "00:15:5d:00:00:0a", directory: scratch.path)
        _ = try guest.waitFor("netvsc: ready", timeout: netvscBringUpSeconds)

        // Linux's bring-up, as the guest saw it.
        for step in ["nvsp: INIT 0x60001 -> status 1", "buffers: receive buffer", "buffers: send buffer", "rndis: INITIALIZE",
                     "mac: 00:15:5d:00:00:0a", "offload: SET OFFLOAD_PARAMETERS", "link: MEDIA_CONNECT_STATUS 0",
                     "subchannels: SUBCHANNEL allocate", "rss: SET RECEIVE_SCALE_PARAMETERS enabled", "filter: CURRENT_PACKET_FILTER 0xd"] {
            #expect(guest.lines.contains { $0.contains(step) }, "no \"\(step)\"\n\(guest.tail)")
        }

        let ping = try #require(NetworkTestHost.tool("ping"), "iputils-ping is not installed (scripts/setup installs it)")
        let pinged = try ns.run([ping, "-c", "100", "-i", "0.02", "-W", "2", "-q", "10.99.0.10"], timeout: 120)
        #expect(pinged.status == 0, "ping: \(pinged.stdout)\(pinged.stderr)\n\(guest.tail)")
        #expect(pinged.stdout.contains("100 packets transmitted, 100 received, 0% packet loss"), "\(pinged.stdout)")

        let arping = try #require(NetworkTestHost.tool("arping"), "arping is not installed (scripts/setup installs it)")
        let arped = try ns.run([arping, "-c", "3", "-I", bridge, "10.99.0.10"], timeout: 60)
        #expect(arped.status == 0, "arping: \(arped.stdout)\(arped.stderr)")
        #expect(arped.stdout.lowercased().contains("00:15:5d:00:00:0a"), "arping did not resolve the guest's MAC: \(arped.stdout)")

        try ns.stopGuest("10.99.0.10")
        let status = try guest.waitForExit(timeout: 120)
        #expect(status == 0, "\(guest.tail)")
        #expect(guest.lines.contains("netvsc: all checks passed"), "\(guest.tail)")
        // Every echo request was answered by the guest itself (not by the host's kernel).
        let totals = try #require(guest.lines.first { $0.hasPrefix("netvsc: totals:") }, "\(guest.tail)")
        let echoes = Self.number(before: " echo replies sent", in: totals)
        #expect(echoes.map { $0 >= 100 } == true, "\(totals)")
        #expect(Self.number(before: " replies dropped", in: totals) == 0, "\(totals)")
        #expect(guest.logProblems.isEmpty, "Veneer logged problems:\n\(guest.logProblems.prefix(20).joined(separator: "\n"))")
    }

    /// The number just before `suffix` in `line` ("..., 100 echo replies sent, ...").
    static func number(before suffix: String, in line: String) -> Int? {
        guard let end = line.range(of: suffix) else { return nil }
        let head = line[..<end.lowerBound]
        let digits = head.reversed().prefix { $0.isNumber }
        return Int(String(digits.reversed()))
    }
}
