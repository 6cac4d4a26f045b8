import Glibc
import VeneerIC
import VeneerPluginKit

extension KVP {
    static let definition = PluginDefinition(
        name: "kvp",
        version: "1.0.0",
        summary: "Hyper-V KVP (data exchange) integration service: host and guest key-value pools",
        kind: .synthetic,
        parameters: [
            ParameterSpec("pair", .group(min: 0, max: KVPPools.maximumPairs, members: [
                ParameterSpec("key", .string, default: nil, doc: "the key (1-255 UTF-16 code units)"),
                ParameterSpec("value", .string, default: "", doc: "the value (at most 1023 UTF-16 code units)"),
            ]), default: nil, doc: "a pair for the guest's external pool (pool 0), one [[device.pair]] table each"),
            ParameterSpec("host_name", .string, default: "",
                          doc: "HostName and PhysicalHostName in the auto-external pool (empty: this machine's host name)"),
            ParameterSpec("vm_name", .string, default: "", doc: "VirtualMachineName in the auto-external pool (empty: not sent)"),
            ParameterSpec("vm_id", .string, default: "", doc: "VirtualMachineId in the auto-external pool, a GUID (empty: not sent)"),
            ParameterSpec("retry_ms", .int(min: 100, max: 600_000), default: "5000",
                          doc: "milliseconds between attempts while the guest's KVP daemon is not running"),
            ParameterSpec("timeout_ms", .int(min: 100, max: 600_000), default: "40000",
                          doc: "milliseconds the guest has to answer one request (Linux gives its daemon 30 s)"),
        ]
    ) { host, params, _ throws(PluginError) in
        var pools = KVPPools()
        do {
            for pair in params.groups("pair") { try pools.set(.external, pair.string("key"), pair.string("value")) }
            for (key, value) in try intrinsicPairs(params) { try pools.set(.autoExternal, key, value) }
        } catch {
            throw PluginError("\(error)")
        }
        return try KVP(host: host, pools: pools, retryMilliseconds: params.int("retry_ms"), timeoutMilliseconds: params.int("timeout_ms"))
    }

    /// The host's intrinsic pairs (the auto-external pool), under the keys a Hyper-V host uses.
    static func intrinsicPairs(_ params: Parameters) throws(PluginError) -> [(String, String)] {
        var hostName = params.string("host_name")
        if hostName.isEmpty { hostName = localHostName() }
        var pairs: [(String, String)] = []
        if !hostName.isEmpty {
            let short = hostName.split(separator: ".").first.map(String.init) ?? hostName
            pairs += [("HostName", short), ("PhysicalHostName", short), ("PhysicalHostNameFullyQualified", hostName)]
        }
        let name = params.string("vm_name")
        if !name.isEmpty { pairs.append(("VirtualMachineName", name)) }
        let id = params.string("vm_id")
        if !id.isEmpty {
            let hex = id.filter { $0 != "-" }
            guard hex.count == 32, hex.allSatisfy(\.isHexDigit), id.count == 36 else {
                throw PluginError("vm_id '\(id)' is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
            }
            pairs.append(("VirtualMachineId", id.uppercased()))
        }
        return pairs
    }

    static func localHostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: KVP.definition) }
