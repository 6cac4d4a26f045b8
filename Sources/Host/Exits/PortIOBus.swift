/// Port I/O dispatch: an O(1) table from each of the 65 536 ports to the device region that owns it.
///
/// Regions are added while the VM is not running (the machine enforces it), so the exit path reads
/// the table without locks; only the owning device's own lock is taken, inside `PluginDevice.io`.
public final class PortIOBus: @unchecked Sendable {
    struct Entry {
        let device: PluginDevice
        let region: UInt32
        let base: UInt16
        let length: UInt32
    }

    private var entries: [Entry] = []
    private var table = [Int32](repeating: -1, count: 0x10000)
    /// Ports the core keeps for itself (e.g. the Hyper-V hypercall ports), by owner name.
    private var reserved: [(ports: ClosedRange<UInt16>, owner: String)] = []

    /// Keeps `ports` from every device; `owner` names the holder in conflict messages.
    public func reserve(_ ports: ClosedRange<UInt16>, owner: String) {
        reserved.append((ports, owner))
    }

    public init() {}

    /// Fails with `.busy` if any port is taken, `.invalid` for an empty or wrapping range.
    public func register(device: PluginDevice, region: UInt32, port: UInt16, length: UInt32) -> veneer_status {
        guard length > 0, UInt32(port) + length <= 0x10000 else { return .invalid }
        let ports = Int(port)..<Int(port) + Int(length)
        guard ports.allSatisfy({ table[$0] < 0 }) else { return .busy }
        guard !reserved.contains(where: { Int($0.ports.lowerBound) < ports.upperBound && ports.lowerBound <= Int($0.ports.upperBound) }) else {
            return .busy
        }
        guard !entries.contains(where: { $0.device === device && $0.region == region }) else { return .invalid }
        entries.append(Entry(device: device, region: region, base: port, length: length))
        rebuild()
        return .ok
    }

    public func unregister(device: PluginDevice, region: UInt32) -> Bool {
        let before = entries.count
        entries.removeAll { $0.device === device && $0.region == region }
        rebuild()
        return entries.count != before
    }

    private func rebuild() {
        table = [Int32](repeating: -1, count: 0x10000)
        for (i, e) in entries.enumerated() {
            for p in Int(e.base)..<Int(e.base) + Int(e.length) { table[p] = Int32(i) }
        }
    }

    /// Who owns `port`, for diagnostics and tests.
    public func owner(of port: UInt16) -> (device: String, region: UInt32)? {
        if let r = reserved.first(where: { $0.ports.contains(port) }) { return (r.owner, 0) }
        let i = table[Int(port)]
        guard i >= 0 else { return nil }
        return (entries[Int(i)].device.instanceName, entries[Int(i)].region)
    }

    /// One guest access. Reads of unclaimed ports return all ones, as on an ISA bus.
    @inline(__always)
    public func dispatch(port: UInt16, size: UInt32, isWrite: Bool, data: inout UInt64) {
        let i = table[Int(port)]
        guard i >= 0 else {
            if !isWrite { data = size >= 8 ? .max : (UInt64(1) << (UInt64(size) * 8)) - 1 }
            return
        }
        let e = entries[Int(i)]
        e.device.io(region: e.region, offset: UInt64(port &- e.base), size: size,
                    flags: isWrite ? UInt32(VENEER_IO_WRITE) : 0, data: &data)
    }
}

import VeneerPluginABI
