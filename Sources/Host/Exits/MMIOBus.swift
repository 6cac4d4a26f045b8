import VeneerPluginABI

/// MMIO dispatch: sorted, non-overlapping ranges found by binary search.
/// Like `PortIOBus`, it may change while vCPUs run: lookups hold the read lock of a
/// readers-writer lock only while they search, changes take the write lock.
public final class MMIOBus: @unchecked Sendable {
    // @unchecked: `entries` is guarded by `lock`.
    struct Entry {
        let device: PluginDevice
        let region: UInt32
        let start: UInt64
        let end: UInt64
    }

    private let lock = ReadWriteLock()
    // Guarded by `lock`; unchecked for the same reason as in PortIOBus.
    @exclusivity(unchecked) private var entries: [Entry] = []

    public init() {}

    /// Fails with `.busy` if the range overlaps another region, `.invalid` for an empty or
    /// wrapping range or a region id the device already uses.
    public func register(device: PluginDevice, region: UInt32, address: UInt64, length: UInt64) -> veneer_status {
        guard length > 0, address <= UInt64.max - length else { return .invalid }
        let end = address + length
        return lock.writing {
            guard !entries.contains(where: { $0.start < end && address < $0.end }) else { return .busy }
            guard !entries.contains(where: { $0.device === device && $0.region == region }) else { return .invalid }
            let entry = Entry(device: device, region: region, start: address, end: end)
            entries.insert(entry, at: entries.firstIndex { $0.start > address } ?? entries.count)
            return .ok
        }
    }

    public func unregister(device: PluginDevice, region: UInt32) -> Bool {
        lock.writing {
            guard let i = entries.firstIndex(where: { $0.device === device && $0.region == region }) else { return false }
            entries.remove(at: i)
            return true
        }
    }

    /// The index of the entry holding `address`; call with the lock held.
    @inline(__always)
    private func find(_ address: UInt64) -> Int? {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].end <= address { low = mid + 1 } else { high = mid }
        }
        return low < entries.count && entries[low].start <= address ? low : nil
    }

    public func owner(of address: UInt64) -> (device: String, region: UInt32)? {
        lock.reading { find(address).map { (entries[$0].device.instanceName, entries[$0].region) } }
    }

    /// Whether no region overlaps [address, address + length).
    public func isFree(address: UInt64, length: UInt64) -> Bool {
        guard length > 0, address <= UInt64.max - length else { return false }
        return lock.reading { !entries.contains { $0.start < address + length && address < $0.end } }
    }

    /// One guest access; unclaimed reads return all ones.
    @inline(__always)
    public func dispatch(address: UInt64, size: UInt32, isWrite: Bool, data: inout UInt64) {
        let entry: Entry? = lock.reading { find(address).map { entries[$0] } }
        guard let e = entry else {
            if !isWrite { data = size >= 8 ? .max : (UInt64(1) << (UInt64(size) * 8)) - 1 }
            return
        }
        e.device.io(region: e.region, offset: address - e.start, size: size,
                    flags: UInt32(VENEER_IO_MMIO) | (isWrite ? UInt32(VENEER_IO_WRITE) : 0), data: &data)
    }
}
