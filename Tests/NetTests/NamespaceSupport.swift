import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NetlinkProtocol
import VeneerNet
import VeneerNetSupport

/// Runs `body` on a new thread that first moves into a fresh network namespace of its own
/// (unshare(CLONE_NEWNET) affects only that thread). Everything it creates (bridges, TAPs,
/// veths, sockets) lives there, and the kernel removes the namespace when the thread and its
/// fds are gone, so nothing leaks into the host even when a test fails midway.
/// Returns nil, with the reason, when the process may not make namespaces.
func inFreshNetworkNamespace<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> Result<T, NamespaceUnavailable> {
    guard NetworkCapabilities.hasNetAdmin else { return .failure(NamespaceUnavailable(reason: "no CAP_NET_ADMIN")) }
    return try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            let result = veneer_unshare_network_namespace()
            guard result == 0 else {
                continuation.resume(returning: .failure(NamespaceUnavailable(reason: "unshare(CLONE_NEWNET): \(String(cString: strerror(-result)))")))
                return
            }
            do { continuation.resume(returning: .success(try body())) } catch { continuation.resume(throwing: error) }
        }
        thread.start()
    }
}

struct NamespaceUnavailable: Error, Sendable {
    var reason: String
}

/// Problems seen inside the namespace thread, reported by the test afterwards (Swift Testing's
/// expectations belong to the test's own task).
final class Findings: @unchecked Sendable {
    // Only the namespace thread touches `problems` until it returns.
    private(set) var problems: [String] = []
    func check(_ condition: Bool, _ what: @autoclosure () -> String) {
        if !condition { problems.append(what()) }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Test-harness netlink jobs Veneer itself never does: veth pairs, enslaving arbitrary links.
enum Harness {
    static func createVeth(_ name: String, peer: String) throws {
        let netlink = try RouteNetlink()
        try netlink.perform(RouteRequest.createVethPair(name: name, peer: peer, sequence: netlink.nextSequence()), what: "creating veth \(name)")
        for end in [name, peer] {
            guard let link = try netlink.link(named: end) else { throw TestFailure("veth end \(end) missing") }
            try netlink.perform(RouteRequest.setLink(index: link.index, up: true, sequence: netlink.nextSequence()), what: "bringing \(end) up")
        }
    }

    static func enslave(_ name: String, to bridge: String) throws {
        let netlink = try RouteNetlink()
        guard let link = try netlink.link(named: name), let master = try netlink.link(named: bridge) else { throw TestFailure("\(name) or \(bridge) missing") }
        try netlink.perform(RouteRequest.setLink(index: link.index, master: master.index, sequence: netlink.nextSequence()), what: "enslaving \(name)")
    }

    static func linkNames() throws -> [String] {
        try RouteNetlink().links().compactMap(\.name).sorted()
    }

    static func index(of name: String) throws -> Int32 {
        guard let link = try RouteNetlink().link(named: name) else { throw TestFailure("no interface \(name)") }
        return link.index
    }

    /// An Ethernet frame from `source` to broadcast with a recognizable payload.
    static func frame(source: MACAddress, marker: UInt8) -> [UInt8] {
        [UInt8](repeating: 0xff, count: 6) + source.array + [0x88, 0xb5] + [UInt8](repeating: marker, count: 46)
    }

    /// Reads from any of `fds` until a datagram satisfies `match` (polling up to ~2 s).
    static func receive(on fds: [Int32], matching match: ([UInt8]) -> Bool) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65_600)
        for _ in 0..<200 {
            var pollfds = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            _ = poll(&pollfds, nfds_t(pollfds.count), 10)
            for p in pollfds where p.revents & Int16(POLLIN) != 0 {
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(p.fd, $0.baseAddress, $0.count) }
                    guard n > 0 else { break }
                    let datagram = Array(buffer[0..<n])
                    if match(datagram) { return datagram }
                }
            }
        }
        return nil
    }

    static func write(_ bytes: [UInt8], to fd: Int32) -> Bool {
        bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count
    }
}
