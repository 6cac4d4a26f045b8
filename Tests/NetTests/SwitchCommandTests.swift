import Foundation
import Testing

// `veneer switch` as an operator runs it: statuses, one-line errors, list output. Every run is
// inside `unshare -n`, so even a broken check cannot touch the host's interfaces. Needs the built
// `veneer` (swift build), unshare and CAP_NET_ADMIN; SKIPPED otherwise.

private let veneer: String? = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    return [root + "/.build/debug/veneer", root + "/.build/release/veneer"].first { FileManager.default.isExecutableFile(atPath: $0) }
}()

private func tool(_ name: String) -> String? {
    ["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"].map { $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

private func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Runs each command line in one shell inside a fresh network namespace; returns each one's
/// output (stdout and stderr) and status.
private func inNamespace(_ unshare: String, _ commands: [String]) throws -> [(output: String, status: Int32)] {
    let script = commands.enumerated().map { i, command in "echo '<<\(i)>>'; \(command) 2>&1; echo \"<<status $?>>\"" }.joined(separator: "\n")
    let result = try run(unshare, ["-n", "sh", "-c", script])
    var steps: [(String, Int32)] = []
    for i in commands.indices {
        guard let start = result.output.range(of: "<<\(i)>>\n"),
              let end = result.output.range(of: "<<status ", range: start.upperBound..<result.output.endIndex),
              let close = result.output.range(of: ">>", range: end.upperBound..<result.output.endIndex),
              let status = Int32(result.output[end.upperBound..<close.lowerBound]) else { return steps }
        steps.append((String(result.output[start.upperBound..<end.lowerBound]), status))
    }
    return steps
}

@Suite struct SwitchCommandTests {
    @Test func createListDeleteAndRefusals() throws {
        guard let veneer else { print("SKIPPED: .build/debug/veneer is not built (run swift build)"); return }
        guard let unshare = tool("unshare") else { print("SKIPPED: no unshare"); return }
        guard geteuid() == 0 || FileManager.default.fileExists(atPath: "/proc/self/ns/net") else { print("SKIPPED: no namespaces"); return }
        let v = "'\(veneer)' switch"
        let steps = try inNamespace(unshare, [
            "ip link add veth-a type veth peer name veth-b",                                  // 0: an uplink (test harness only)
            "\(v) create lan --type internal --address 10.9.0.1/24",                          // 1
            "\(v) create wan --type external --uplink veth-a",                                // 2
            "\(v) create iso --type private",                                                 // 3
            "\(v) list --json",                                                               // 4
            "\(v) list",                                                                      // 5
            "\(v) create lan --type private",                                                 // 6: exists
            "\(v) create bad/name --type private",                                            // 7
            "\(v) create x --type external --uplink nosuch0",                                 // 8
            "\(v) create p --type private --address 10.0.0.1/24",                             // 9
            "\(v) create q --type internal --address 10.0.0.300/24",                          // 10
            "\(v) create r --type bogus",                                                     // 11
            "\(v) delete veth-b",                                                             // 12: not Veneer's
            "\(v) delete lan && \(v) delete wan && \(v) delete iso",                          // 13
            "\(v) delete lan",                                                                // 14
            "\(v) list --json",                                                               // 15
        ])
        guard steps.count == 16 else {
            print("SKIPPED: could not run commands in a network namespace (\(steps.first?.output ?? "unshare -n failed"))")
            return
        }
        if steps[0].status != 0 { print("SKIPPED: veth pairs unavailable: \(steps[0].output)"); return }
        #expect(steps[1] == ("created internal switch lan\n", 0))
        #expect(steps[2] == ("created external switch wan\n", 0))
        #expect(steps[3] == ("created private switch iso\n", 0))
        #expect(steps[4].status == 0)
        #expect(steps[4].output.contains(#"{"name": "lan", "type": "internal", "up": true, "uplink": null, "addresses": ["10.9.0.1/24"], "ports": []"#))
        #expect(steps[4].output.contains(#"{"name": "wan", "type": "external", "up": true, "uplink": "veth-a", "addresses": [], "ports": []"#))
        #expect(steps[4].output.hasPrefix(#"[{"name": "iso", "type": "private""#))
        let table = steps[5].output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(table.count == 4 && table[0] == ["NAME", "TYPE", "STATE", "UPLINK", "ADDRESSES", "PORTS"])
        #expect(table.count == 4 && table[2] == ["lan", "internal", "up", "-", "10.9.0.1/24", "-"])
        #expect(steps[6] == ("veneer: switch 'lan' already exists\n", 73))
        #expect(steps[7].status == 64 && steps[7].output.hasPrefix("veneer: switch name 'bad/name' has a character"))
        #expect(steps[8] == ("veneer: uplink interface 'nosuch0' does not exist\n", 69))
        #expect(steps[9].status == 64 && steps[9].output.contains("a private switch has no host address"))
        #expect(steps[10] == ("veneer: address '10.0.0.300/24': '10.0.0.300' is not an IPv4 address (see veneer --help)\n", 64))
        #expect(steps[11].status == 64)
        #expect(steps[12] == ("veneer: interface 'veth-b' is not a Veneer switch; not deleting it\n", 69))
        #expect(steps[13] == ("deleted switch lan\ndeleted switch wan\ndeleted switch iso\n", 0))
        #expect(steps[14] == ("veneer: no switch named 'lan'\n", 69))
        #expect(steps[15] == ("[]\n", 0))
        for step in steps { #expect(step.output.split(separator: "\n").count <= 4, "\(step.output)") }
    }

    @Test func rootWithoutCapNetAdminIsToldSoInOneLine() throws {
        guard let veneer else { print("SKIPPED: .build/debug/veneer is not built (run swift build)"); return }
        guard let unshare = tool("unshare"), let capsh = tool("capsh") else { print("SKIPPED: needs unshare and capsh"); return }
        // capsh drops CAP_NET_ADMIN from the bounding set: the shell and veneer run as uid 0 without it.
        let result = try run(unshare, ["-n", capsh, "--drop=cap_net_admin", "--", "-c", "'\(veneer)' switch create lan --type private; echo \"<<$?>>\"; '\(veneer)' switch list"])
        if result.output.contains("unshare: ") { print("SKIPPED: unshare -n failed: \(result.output)"); return }
        #expect(result.output.hasPrefix("veneer: creating a switch needs CAP_NET_ADMIN, which this process lacks (run as root or grant the capability)\n<<77>>\n"),
                "\(result.output)")
        #expect(result.output.hasSuffix("NAME  TYPE  STATE  UPLINK  ADDRESSES  PORTS\n"), "listing needs no capability: \(result.output)")
    }
}
