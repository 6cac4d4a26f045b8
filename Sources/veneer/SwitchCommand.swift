import ArgumentParser
import VeneerHost
import VeneerNet
#if canImport(Glibc)
import Glibc
#endif

/// `veneer switch create|list|delete`: virtual switches as Linux bridges.
struct Switch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and delete virtual switches (Linux bridges VM NICs join).",
        subcommands: [SwitchCreate.self, SwitchList.self, SwitchDelete.self])
}

/// sysexits statuses of `veneer switch`.
enum SwitchExitStatus {
    static let usage: Int32 = 64        // EX_USAGE: bad name, type/option mismatch, bad address
    static let unavailable: Int32 = 69  // EX_UNAVAILABLE: the switch or uplink is missing, or not Veneer's
    static let software: Int32 = 70     // EX_SOFTWARE: the kernel refused for another reason
    static let cannotCreate: Int32 = 73 // EX_CANTCREAT: the name is taken
    static let noPermission: Int32 = 77 // EX_NOPERM: no CAP_NET_ADMIN
}

extension SwitchType: ExpressibleByArgument {}

private func requireNetAdmin(_ action: String) throws {
    guard NetworkCapabilities.hasNetAdmin else {
        throw fail("\(action) needs CAP_NET_ADMIN, which this process lacks (run as root or grant the capability)",
                   status: SwitchExitStatus.noPermission)
    }
}

private func status(for error: SwitchError) -> Int32 {
    switch error.kind {
    case .invalid: SwitchExitStatus.usage
    case .notFound, .notVeneers, .inUse: SwitchExitStatus.unavailable
    case .exists: SwitchExitStatus.cannotCreate
    case .notPermitted: SwitchExitStatus.noPermission
    case .failed: SwitchExitStatus.software
    }
}

struct SwitchCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a switch.")

    @Argument(help: "The switch (and bridge) name: 1-15 letters, digits, '-', '_', '.'.") var name: String
    @Option(help: "private (VMs only), internal (VMs and the host) or external (also an uplink).") var type: SwitchType
    @Option(help: "The host's address on an internal or external switch, in CIDR form (10.0.0.1/24).") var address: String?
    @Option(help: "The interface an external switch enslaves.") var uplink: String?

    func run() throws {
        try requireNetAdmin("creating a switch")
        var network: IPNetwork?
        if let address {
            do { network = try IPNetwork(cidr: address) } catch { throw fail(error.message, status: SwitchExitStatus.usage) }
        }
        do {
            let info = try LinuxBridgeSwitches().create(name: name, type: type, address: network, uplink: uplink)
            print("created \(info.type.rawValue) switch \(info.name)")
        } catch {
            throw fail(error.message, status: status(for: error))
        }
    }
}

struct SwitchList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List Veneer's switches with their type, uplink, addresses and ports.")

    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let switches: [SwitchInfo]
        do { switches = try LinuxBridgeSwitches().list() } catch {
            throw fail(error.message, status: status(for: error))
        }
        if json {
            print("[" + switches.map(jsonObject).joined(separator: ", ") + "]")
            return
        }
        let rows = [["NAME", "TYPE", "STATE", "UPLINK", "ADDRESSES", "PORTS"]] + switches.map { s in
            [s.name, s.type.rawValue, s.up ? "up" : "down", s.uplink ?? "-",
             s.addresses.isEmpty ? "-" : s.addresses.map(\.description).joined(separator: ","),
             s.ports.isEmpty ? "-" : s.ports.joined(separator: ",")]
        }
        let widths = (0..<6).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let padded = row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count) }
            print(padded.joined(separator: "  "))
        }
    }

    private func jsonObject(_ s: SwitchInfo) -> String {
        let fields = [
            "\"name\": \(jsonString(s.name))",
            "\"type\": \(jsonString(s.type.rawValue))",
            "\"up\": \(s.up)",
            "\"uplink\": \(s.uplink.map(jsonString) ?? "null")",
            "\"addresses\": [\(s.addresses.map { jsonString($0.description) }.joined(separator: ", "))]",
            "\"ports\": [\(s.ports.map(jsonString).joined(separator: ", "))]",
            "\"vlanFiltering\": \(s.vlanFiltering)",
        ]
        return "{" + fields.joined(separator: ", ") + "}"
    }
}

struct SwitchDelete: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a switch no VM is on.")

    @Argument(help: "The switch to delete.") var name: String

    func run() throws {
        try requireNetAdmin("deleting a switch")
        do { try LinuxBridgeSwitches().delete(name: name) } catch {
            throw fail(error.message, status: status(for: error))
        }
        print("deleted switch \(name)")
    }
}

/// A JSON string literal (interface names and addresses are ASCII, but escape what JSON requires).
private func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
