import Foundation
import NetlinkProtocol
import Testing
import VeneerNet
import VeneerNetSupport

// The switch backend against the real kernel, each test in a network namespace of its own
// (see inFreshNetworkNamespace). SKIPPED without CAP_NET_ADMIN or namespaces.

@Suite struct SwitchNamespaceTests {
    func run(_ name: String, _ body: @escaping @Sendable (Findings) throws -> Void) async throws {
        let outcome = try await inFreshNetworkNamespace { () throws -> [String] in
            let findings = Findings()
            try body(findings)
            return findings.problems
        }
        switch outcome {
        case .failure(let unavailable): print("SKIPPED: \(name): \(unavailable.reason)")
        case .success(let problems): #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        }
    }

    @Test func eachSwitchTypeIsCreatedListedAndDeletedCleanly() async throws {
        try await run("switch types") { f in
            try Harness.createVeth("up0", peer: "wire0")
            let before = try Harness.linkNames()
            let switches = LinuxBridgeSwitches()
            let priv = try switches.create(name: "vpriv", type: .private)
            f.check(priv.type == .private && priv.addresses.isEmpty && priv.uplink == nil && priv.up, "private: \(priv)")
            let int = try switches.create(name: "vint", type: .internal, address: IPNetwork(cidr: "10.77.0.1/24"))
            let intAddress = try IPNetwork(cidr: "10.77.0.1/24")
            f.check(int.type == .internal && int.addresses == [intAddress], "internal: \(int)")
            let ext = try switches.create(name: "vext", type: .external, uplink: "up0")
            f.check(ext.type == .external && ext.uplink == "up0" && ext.ports.isEmpty, "external: \(ext)")
            let uplinkMaster = try RouteNetlink().link(named: "up0")?.master
            let vextIndex = try Harness.index(of: "vext")
            f.check(uplinkMaster == vextIndex, "uplink enslaved to vext: master \(String(describing: uplinkMaster))")

            // A bridge that is not Veneer's is neither listed nor deleted.
            let netlink = try RouteNetlink()
            try netlink.perform(RouteRequest.createBridge(name: "other", alias: "someone else's", sequence: netlink.nextSequence()), what: "other bridge")
            let listed = try switches.list()
            f.check(listed.map(\.name) == ["vext", "vint", "vpriv"], "list: \(listed.map(\.name))")
            f.check(throwsMessage { try switches.delete(name: "other") } == "interface 'other' is not a Veneer switch; not deleting it", "delete other")
            f.check(throwsMessage { _ = try switches.create(name: "other", type: .private) } == "interface 'other' already exists and is not a Veneer switch", "create over other")
            f.check(throwsMessage { _ = try switches.create(name: "vpriv", type: .private) } == "switch 'vpriv' already exists", "create twice")
            f.check(throwsMessage { _ = try switches.create(name: "vx", type: .external, uplink: "nosuch0") } == "uplink interface 'nosuch0' does not exist", "missing uplink")
            f.check(throwsMessage { _ = try switches.create(name: "vy", type: .external, uplink: "up0") } == "uplink interface 'up0' is already a port of 'vext'", "uplink taken")
            f.check(throwsMessage { _ = try switches.create(name: "vz", type: .external) } == "switch 'vz': an external switch needs --uplink IFACE", "no uplink")
            f.check(throwsMessage { _ = try switches.create(name: "much-too-long-name", type: .private) }?.contains("at most 15") == true, "long name")
            f.check(throwsMessage { try switches.delete(name: "nosuch") } == "no switch named 'nosuch'", "delete missing")
            let afterRefusals = try Harness.linkNames()
            f.check(afterRefusals == (before + ["other", "vext", "vint", "vpriv"]).sorted(), "failed creates left something: \(afterRefusals)")

            for name in ["vpriv", "vint", "vext"] { try switches.delete(name: name) }
            try netlink.perform(RouteRequest.deleteLink(index: try Harness.index(of: "other"), sequence: netlink.nextSequence()), what: "other")
            let afterDelete = try Harness.linkNames()
            f.check(afterDelete == before, "after delete: \(afterDelete) vs \(before)")
            f.check(try RouteNetlink().link(named: "up0")?.master ?? 0 == 0, "uplink released")
            f.check(try switches.list().isEmpty, "list after delete")
        }
    }

    @Test func tapPortQueuesCarryFramesThroughTheBridgeToAVeth() async throws {
        try await run("TAP port") { f in
            let switches = LinuxBridgeSwitches()
            _ = try switches.create(name: "vlan0", type: .internal, address: IPNetwork(cidr: "10.78.0.1/24"))
            try Harness.createVeth("peer0", peer: "wire0")
            try Harness.enslave("peer0", to: "vlan0")
            let watcher = veneer_packet_socket(try Harness.index(of: "wire0"))
            guard watcher >= 0 else { throw TestFailure("packet socket: \(-watcher)") }
            defer { close(watcher) }

            let mac = MACAddress.derived(vmName: "test-vm", nicIndex: 0)
            let spec = PortSpec(switchName: "vlan0", interfaceName: "vtap0", mac: mac, queues: 4, mtu: 9000)
            let port = try LinuxBridgeBackend().attachTAP(spec)
            f.check(port.queueFDs.count == 4 && Set(port.queueFDs).count == 4, "queue fds \(port.queueFDs)")
            f.check(port.linkUp, "TAP has carrier and is up")
            f.check(port.offloads.contains([.checksum, .tso4, .tso6]), "offloads \(port.offloads)")
            let tap = try RouteNetlink().link(named: "vtap0")
            let bridgeIndex = try Harness.index(of: "vlan0")
            f.check(tap?.kind == "tun" && tap?.mtu == 9000 && tap?.master == bridgeIndex, "tap link \(String(describing: tap))")
            let listed = try switches.list()
            f.check(listed.first?.ports == ["peer0", "vtap0"], "ports \(listed)")
            f.check(throwsMessage { _ = try LinuxBridgeBackend().attach(spec) }?.contains("already exists") == true, "second attach of one name")
            f.check(throwsMessage { try switches.delete(name: "vlan0") } == "switch 'vlan0' still has VM ports (vtap0); stop those VMs first", "delete busy")

            // Guest to wire: every queue's frame, after its vnet header, comes out of the veth.
            for (queue, fd) in port.queueFDs.enumerated() {
                let frame = Harness.frame(source: mac, marker: UInt8(0x40 + queue))
                f.check(Harness.write(VirtioNetHeader.plain.encoded + frame, to: fd), "write on queue \(queue)")
                let seen = Harness.receive(on: [watcher]) { $0.count >= 60 && $0[14] == UInt8(0x40 + queue) && Array($0[6..<12]) == mac.array }
                f.check(seen.map { Array($0.prefix(frame.count)) } == frame, "queue \(queue) frame on wire0")
            }
            // Wire to guest: a frame sent on the veth reaches one of the queues with a vnet header.
            let inbound = Harness.frame(source: MACAddress(0x02, 0, 0, 0, 0, 0x99), marker: 0x77)
            f.check(Harness.write(inbound, to: watcher), "send on wire0")
            let received = Harness.receive(on: port.queueFDs) { $0.count >= VirtioNetHeader.size + 15 && $0[VirtioNetHeader.size + 14] == 0x77 }
            f.check(received.map { Array($0.dropFirst(VirtioNetHeader.size).prefix(inbound.count)) } == inbound, "inbound frame on a queue")
            f.check(received.flatMap { VirtioNetHeader(decoding: $0) }?.gsoType == 0, "inbound vnet header")

            port.close()
            port.close()  // idempotent
            f.check(try !Harness.linkNames().contains("vtap0"), "TAP gone after close")
            f.check(try switches.list().first?.ports == ["peer0"], "port left the switch")
            try switches.delete(name: "vlan0")
            f.check(try !Harness.linkNames().contains("vlan0"), "switch gone")
        }
    }

    @Test func externalSwitchCarriesTAPFramesOutOfTheUplink() async throws {
        try await run("external switch") { f in
            try Harness.createVeth("eth9", peer: "lan9")
            let watcher = veneer_packet_socket(try Harness.index(of: "lan9"))
            guard watcher >= 0 else { throw TestFailure("packet socket: \(-watcher)") }
            defer { close(watcher) }
            _ = try LinuxBridgeSwitches().create(name: "vext", type: .external, uplink: "eth9")
            let mac = MACAddress.derived(vmName: "ext-vm", nicIndex: 3)
            let port = try LinuxBridgeBackend().attach(PortSpec(switchName: "vext", interfaceName: "vtap9", mac: mac))
            defer { port.close() }
            let frame = Harness.frame(source: mac, marker: 0x5a)
            f.check(Harness.write(VirtioNetHeader.plain.encoded + frame, to: port.queueFDs[0]), "write")
            let seen = Harness.receive(on: [watcher]) { $0.count >= 60 && $0[14] == 0x5a }
            f.check(seen.map { Array($0.prefix(frame.count)) } == frame, "frame out of the uplink's wire")
        }
    }

    @Test func vlanAccessPortGetsItsPVIDOrAClearKernelError() async throws {
        try await run("VLAN port") { f in
            _ = try LinuxBridgeSwitches().create(name: "vsw", type: .private)
            let spec = PortSpec(switchName: "vsw", interfaceName: "vtap10", mac: .derived(vmName: "v", nicIndex: 0), vlan: 10)
            do {
                let port = try LinuxBridgeBackend().attach(spec)
                defer { port.close() }
                let ports = try RouteNetlink().bridgePorts()
                let vlans = ports.first { $0.name == "vtap10" }?.bridgeVLANs ?? []
                f.check(vlans == [.access(10)], "vtap10 VLANs \(vlans): only VLAN 10, PVID and untagged")
                f.check(try LinuxBridgeSwitches().list().first?.vlanFiltering == true, "filtering on")
            } catch let error as NetworkError {
                // Kernels built without CONFIG_BRIDGE_VLAN_FILTERING: the refusal must say so, and leave no TAP.
                f.check(error.message == "switch 'vsw': this kernel's bridges have no VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING), so VLAN access ports cannot work",
                        "VLAN error: \(error.message)")
                f.check(try !Harness.linkNames().contains("vtap10"), "no TAP left after the refusal")
                print("SKIPPED: VLAN PVID check: this kernel has no bridge VLAN filtering (the refusal was checked)")
            }
            f.check(throwsMessage { _ = try LinuxBridgeBackend().attach(PortSpec(switchName: "vsw", interfaceName: "t", mac: spec.mac, vlan: 4095)) }
                    == "port 't': VLAN 4095 is outside 1-4094", "VLAN range")
            f.check(throwsMessage { _ = try LinuxBridgeBackend().attach(PortSpec(switchName: "nosw", interfaceName: "t", mac: spec.mac)) }
                    == "port 't': no Veneer switch named 'nosw' (create it with veneer switch create)", "missing switch")
            f.check(throwsMessage { _ = try LinuxBridgeBackend().attach(PortSpec(switchName: "vsw", interfaceName: "t", mac: spec.mac, queues: 0)) }
                    == "port 't': 0 queues; a TAP has 1 to 256", "queue range")
        }
    }
}

/// The message of the NetworkError or SwitchError `body` throws, or nil when it succeeds.
func throwsMessage(_ body: () throws -> Void) -> String? {
    do { try body() } catch let error as NetworkError { return error.message } catch let error as SwitchError { return error.message } catch { return "\(error)" }
    return nil
}
