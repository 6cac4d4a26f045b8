import Foundation
import Testing

/// Private switches keep their VMs to themselves: two netvsc guests on one private switch
/// exchange frames (ARP, 20 ICMP echoes, the stop datagram), while a third guest on another
/// private switch, listening promiscuously the whole time, sees none of their frames.
@Suite(.serialized, .enabled("SKIPPED: network tests need /dev/kvm, CAP_NET_ADMIN and ip") { NetworkTestHost.canRun })
struct NetworkIsolationTests {
    @Test(.timeLimit(.minutes(20)))
    func twoVMsOnAPrivateSwitchTalkAndAThirdOnAnotherSeesNothing() throws {
        let scratch = try NetworkScratch()
        let ns = try NetworkNamespace()
        defer { ns.close() }
        let id = NetworkTestHost.suffix().prefix(5)
        let shared = "vpa\(id)", other = "vpb\(id)"
        try ns.createSwitch(shared, type: "private")
        try ns.createSwitch(other, type: "private")

        // The watcher first, so it listens before the others send anything.
        let watcher = try NetworkGuest(ns, name: "watcher", image: "netvsc-watch.bin", switchName: other,
                                       mac: "00:15:5d:00:00:0c", directory: scratch.path)
        _ = try watcher.waitFor("netvsc: ready", timeout: netvscBringUpSeconds)

        let responder = try NetworkGuest(ns, name: "responder", image: "netvsc.bin", switchName: shared,
                                         mac: "00:15:5d:00:00:0a", directory: scratch.path)
        let pinger = try NetworkGuest(ns, name: "pinger", image: "netvsc-ping.bin", switchName: shared,
                                      mac: "00:15:5d:00:00:0b", directory: scratch.path)

        // The pinger resolves 10.99.0.10, pings it 20 times and stops it with a datagram.
        #expect(try pinger.waitForExit(timeout: netvscBringUpSeconds + 180) == 0, "\(pinger.tail)")
        #expect(pinger.lines.contains("netvsc: ping: 20 of 20 echo requests to 10.99.0.10 answered"), "\(pinger.tail)")
        #expect(pinger.lines.contains { $0.contains("ping: 10.99.0.10 is at 00:15:5d:00:00:0a") }, "\(pinger.tail)")
        #expect(try responder.waitForExit(timeout: 60) == 0, "\(responder.tail)")
        #expect(responder.lines.contains("netvsc: responder: stopped by datagram"), "\(responder.tail)")
        let senders = responder.lines.first { $0.hasPrefix("netvsc: senders:") } ?? ""
        #expect(senders.contains("10.99.0.11="), "the responder never heard from the pinger: \(senders)")

        // The watcher saw nothing from either: every frame it printed came from elsewhere.
        let seen = watcher.lines.filter { $0.contains("netvsc: watch: frame ") }
        let leaked = seen.filter { $0.contains("from 00:15:5d:00:00:0a") || $0.contains("from 00:15:5d:00:00:0b") }
        #expect(leaked.isEmpty, "frames crossed between private switches:\n\(leaked.joined(separator: "\n"))")
        #expect(!watcher.lines.contains { $0.contains(": FAILED ") }, "\(watcher.tail)")
        #expect(watcher.process.isRunning, "the watcher ended early\n\(watcher.tail)")

        for guest in [responder, pinger, watcher] {
            #expect(guest.logProblems.isEmpty, "\(guest.name): Veneer logged problems:\n\(guest.logProblems.prefix(20).joined(separator: "\n"))")
        }
    }
}
