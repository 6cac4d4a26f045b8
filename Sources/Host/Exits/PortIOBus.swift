import VeneerPluginABI

/// Port I/O dispatch: an O(1) table from each of the 65 536 ports to the device region that owns it.
///
/// Regions may change while vCPUs run (PCI BARs move when the guest writes them), so lookups take
/// the read lock of a readers-writer lock and changes the write lock. A lookup copies the entry
/// out and drops the lock before calling the device: the device's own lock is taken inside
/// `PluginDevice.io`, and a device may change regions from its callback. An access that was
/// looked up just before its region went away still reaches the device, as an access already on
/// the bus would on hardware; devices outlive the vCPUs, so that is safe.
public final class PortIOBus: @unchecked Sendable {
    // @unchecked: every mutable property is guarded by `lock`.
    struct Entry {
        let device: PluginDevice
        let region: UInt32
        let base: UInt16
        let length: UInt32
    }

    private let lock = ReadWriteLock()
    /// Slots stay where they are while their region exists, so the table's indices stay valid;
    /// freed slots are reused, so the array is as long as the most regions ever held at once.
    // Guarded by `lock`; unchecked: the exit path reads them under the read lock, and Swift's
    // dynamic exclusivity checks would cost more than the lock itself.
    @exclusivity(unchecked) private var entries: [Entry?] = []
    @exclusivity(unchecked) private var table = [Int32](repeating: -1, count: 0x10000)
    /// Ports the core keeps for itself (e.g. the Hyper-V hypercall ports), by owner name.
    private var reserved: [(ports: ClosedRange<UInt16>, owner: String)] = []

    public init() {}

    /// Keeps `ports` from every device; `owner` names the holder in conflict messages.
    public func reserve(_ ports: ClosedRange<UInt16>, owner: String) {
        lock.writing { reserved.append((ports, owner)) }
    }

    /// Fails with `.busy` if any port is taken, `.invalid` for an empty or wrapping range or a
    /// region id the device already uses.
    public func register(device: PluginDevice, region: UInt32, port: UInt16, length: UInt32) -> veneer_status {
        guard length > 0, UInt32(port) + length <= 0x10000 else { return .invalid }
        let ports = Int(port)..<Int(port) + Int(length)
        return lock.writing {
            guard ports.allSatisfy({ table[$0] < 0 }) else { return .busy }
            guard !reserved.contains(where: { Int($0.ports.lowerBound) < ports.upperBound && ports.lowerBound <= Int($0.ports.upperBound) }) else {
                return .busy
            }
            guard !entries.contains(where: { $0?.device === device && $0?.region == region }) else { return .invalid }
            let entry = Entry(device: device, region: region, base: port, length: length)
            let slot: Int
            if let free = entries.firstIndex(where: { $0 == nil }) {
                slot = free
                entries[free] = entry
            } else {
                slot = entries.count
                entries.append(entry)
            }
            for p in ports { table[p] = Int32(slot) }
            return .ok
        }
    }

    public func unregister(device: PluginDevice, region: UInt32) -> Bool {
        lock.writing {
            guard let slot = entries.firstIndex(where: { $0?.device === device && $0?.region == region }),
                  let entry = entries[slot] else { return false }
            for p in Int(entry.base)..<Int(entry.base) + Int(entry.length) { table[p] = -1 }
            entries[slot] = nil
            return true
        }
    }

    /// Who owns `port`, for diagnostics and tests.
    public func owner(of port: UInt16) -> (device: String, region: UInt32)? {
        lock.reading {
            if let r = reserved.first(where: { $0.ports.contains(port) }) { return (r.owner, 0) }
            let i = table[Int(port)]
            guard i >= 0, let e = entries[Int(i)] else { return nil }
            return (e.device.instanceName, e.region)
        }
    }

    /// Whether no device and no reservation holds any of `count` ports from `port`.
    public func isFree(port: UInt16, count: UInt32) -> Bool {
        guard UInt32(port) + count <= 0x10000 else { return false }
        return lock.reading {
            let ports = Int(port)..<Int(port) + Int(count)
            return ports.allSatisfy { table[$0] < 0 }
                && !reserved.contains { Int($0.ports.lowerBound) < ports.upperBound && ports.lowerBound <= Int($0.ports.upperBound) }
        }
    }

    /// One guest access. Reads of unclaimed ports return all ones, as on an ISA bus.
    @inline(__always)
    public func dispatch(port: UInt16, size: UInt32, isWrite: Bool, data: inout UInt64) {
        let entry: Entry? = lock.reading {
            let i = table[Int(port)]
            return i >= 0 ? entries[Int(i)] : nil
        }
        guard let e = entry else {
            if !isWrite { data = size >= 8 ? .max : (UInt64(1) << (UInt64(size) * 8)) - 1 }
            return
        }
        e.device.io(region: e.region, offset: UInt64(port &- e.base), size: size,
                    flags: isWrite ? UInt32(VENEER_IO_WRITE) : 0, data: &data)
    }
}
