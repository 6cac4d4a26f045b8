import Foundation
import Testing

/// Per-port policy from the VM config, enforced: a VLAN access port reaches only its VLAN, and a
/// guest's frames from a MAC that is not its own are dropped unless `allow_mac_spoofing` is set.
@Suite(.serialized, .enabled("SKIPPED: network tests need /dev/kvm, CAP_NET_ADMIN and ip") { NetworkTestHost.canRun })
struct NetworkPolicyTests {
    /// A private switch with VLAN filtering, the guest on an access port of VLAN 10, and two
    /// host namespaces on access ports of VLANs 10 and 20 (all in 10.99.0.0/24): only VLAN 10's
    /// pings get through, and the guest never hears from VLAN 20 or sees a tag.
    @Test(.timeLimit(.minutes(15)))
    func vlanAccessPortOnlySeesItsVLAN() throws {
        let scratch = try NetworkScratch()
        let ns = try NetworkNamespace()
        let vlan10 = try NetworkNamespace("vnt10"), vlan20 = try NetworkNamespace("vnt20")
        defer { [ns, vlan10, vlan20].forEach { $0.close() } }
        let bridge = "vsv\(NetworkTestHost.suffix().prefix(6))"
        try ns.createSwitch(bridge, type: "private")
        do { try ns.runChecked(["ip", "link", "set", bridge, "type", "bridge", "vlan_filtering", "1"]) } catch {
            // VLAN access ports are the bridge's own VLAN filtering, which some kernels lack.
            guard "\(error)".contains("Operation not supported") else { throw error }
            print("SKIPPED: VLAN access ports: this kernel's bridges have no VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)")
            return
        }
        for (port, namespace, vid, address) in [("vv10", vlan10, "10", "10.99.0.2/24"), ("vv20", vlan20, "20", "10.99.0.3/24")] {
            try ns.veth(inside: port, outside: "eth0", peer: namespace, address: address)
            try ns.runChecked(["ip", "link", "set", port, "master", bridge])
            try ns.runChecked(["bridge", "vlan", "del", "dev", port, "vid", "1"])
            try ns.runChecked(["bridge", "vlan", "add", "dev", port, "vid", vid, "pvid", "untagged"])
        }

        let guest = try NetworkGuest(ns, name: "vlan-guest", image: "netvsc.bin", switchName: bridge, mac: "00:15:5d:00:00:0a",
                                     nic: ["vlan = 10"], directory: scratch.path)
        _ = try guest.waitFor("netvsc: ready", timeout: netvscBringUpSeconds)

        let ping = try #require(NetworkTestHost.tool("ping"), "iputils-ping is not installed (scripts/setup installs it)")
        let same = try vlan10.run([ping, "-c", "10", "-i", "0.1", "-W", "2", "-q", "10.99.0.10"])
        #expect(same.status == 0 && same.stdout.contains(" 0% packet loss"), "VLAN 10 -> guest: \(same.stdout)\(same.stderr)")
        let other = try vlan20.run([ping, "-c", "5", "-i", "0.2", "-W", "1", "-q", "10.99.0.10"])
        #expect(other.status != 0 && other.stdout.contains("100% packet loss"), "VLAN 20 reached the guest: \(other.stdout)")

        try vlan10.stopGuest("10.99.0.10")
        #expect(try guest.waitForExit(timeout: 120) == 0, "\(guest.tail)")
        let senders = try #require(guest.lines.first { $0.hasPrefix("netvsc: senders:") }, "\(guest.tail)")
        #expect(senders.contains("10.99.0.2="), "the guest never heard from VLAN 10: \(senders)")
        #expect(!senders.contains("10.99.0.3="), "the guest heard from VLAN 20: \(senders)")
        let totals = try #require(guest.lines.first { $0.hasPrefix("netvsc: totals:") }, "\(guest.tail)")
        #expect(totals.contains(" 0 tagged frames"), "an access port's guest saw 802.1Q tags: \(totals)")
        #expect(guest.logProblems.isEmpty, "Veneer logged problems:\n\(guest.logProblems.prefix(20).joined(separator: "\n"))")
    }

    /// The UDP guest sends the host (10.99.0.1:7000) ten datagrams each: plain, with the UDP
    /// checksum left to the host (checksum PPI; the host's kernel drops them if the offload is
    /// lost on the way), and from a spoofed source MAC. With spoofing off (the default) the
    /// spoofed ones never arrive; with `allow_mac_spoofing = true` they do.
    @Test(.timeLimit(.minutes(20)), arguments: [false, true])
    func spoofedSourceMACIsDroppedUnlessAllowed(allowSpoofing: Bool) throws {
        let scratch = try NetworkScratch()
        let ns = try NetworkNamespace()
        defer { ns.close() }
        let bridge = "vss\(NetworkTestHost.suffix().prefix(6))"
        try ns.createSwitch(bridge, type: "internal", address: "10.99.0.1/24")

        // The host's side: collects datagrams on 7000 until 5 s after the last one (the guest's
        // bring-up comes first), then sends the guest ten on 7001 and the stop datagram.
        let received = scratch.path + "/received.txt"
        let receiver = try ns.start(["python3", "-c", """
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("10.99.0.1", 7000))
            got, last, start = [], None, time.time()
            while True:
                s.settimeout(1.0)
                try:
                    data, _ = s.recvfrom(2048)
                    got.append(data.decode(errors="replace")); last = time.time()
                    print(got[-1], flush=True)
                except socket.timeout:
                    pass
                if last is not None and time.time() - last > 5: break
                if time.time() - start > \(Int(netvscBringUpSeconds) + 60): break
            for i in range(10):
                s.sendto(b"host %d" % i, ("10.99.0.10", 7001))
            time.sleep(1)
            s.sendto(b"veneer-netvsc-stop", ("10.99.0.10", 9))
            """], stdout: received, stderr: scratch.path + "/receiver.err")

        let guest = try NetworkGuest(ns, name: "udp-guest", image: "netvsc-udp.bin", switchName: bridge, mac: "00:15:5d:00:00:0a",
                                     nic: ["allow_mac_spoofing = \(allowSpoofing)"], directory: scratch.path)
        #expect(try guest.waitForExit(timeout: netvscBringUpSeconds + 180) == 0, "\(guest.tail)")
        while receiver.isRunning { usleep(100_000) }
        let datagrams = ((try? String(contentsOfFile: received, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        let plain = datagrams.filter { $0.hasPrefix("plain ") }.count
        let offloaded = datagrams.filter { $0.hasPrefix("offload ") }.count
        let spoofed = datagrams.filter { $0.hasPrefix("spoofed ") }.count
        #expect(plain == 10, "plain datagrams received: \(datagrams)\n\(guest.tail)")
        #expect(offloaded == 10, "datagrams with the checksum offloaded received: \(datagrams)\n\(guest.tail)")
        #expect(spoofed == (allowSpoofing ? 10 : 0), "spoofed datagrams received with allow_mac_spoofing = \(allowSpoofing): \(datagrams)")
        #expect(guest.lines.contains { $0.hasPrefix("netvsc: udp: 10 datagrams from the host on port 7001") }, "\(guest.tail)")
        #expect(guest.lines.contains("netvsc: all checks passed"), "\(guest.tail)")
    }
}
