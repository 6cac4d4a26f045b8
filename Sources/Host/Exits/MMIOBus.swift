import VeneerPluginABI

/// MMIO dispatch: sorted, non-overlapping ranges found by binary search.
/// Like `PortIOBus`, it changes only while the VM is not running.
public final class MMIOBus: @unchecked Sendable {
    struct Entry {
        let device: PluginDevice
        let region: UInt32
        let start: UInt64
        let end: UInt64
    }

    private var entries: [Entry] = []

    public init() {}

    public func register(device: PluginDevice, region: UInt32, address: UInt64, length: UInt64) -> veneer_status {
        guard length > 0, address <= UInt64.max - length else { return .invalid }
        let end = address + length
        guard !entries.contains(where: { $0.start < end && address < $0.end }) else { return .busy }
        guard !entries.contains(where: { $0.device === device && $0.region == region }) else { return .invalid }
        entries.append(Entry(device: device, region: region, start: address, end: end))
        entries.sort { $0.start < $1.start }
        return .ok
    }

    public func unregister(device: PluginDevice, region: UInt32) -> Bool {
        let before = entries.count
        entries.removeAll { $0.device === device && $0.region == region }
        return entries.count != before
    }

    @inline(__always)
    func find(_ address: UInt64) -> Int? {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].end <= address { low = mid + 1 } else { high = mid }
        }
        return low < entries.count && entries[low].start <= address ? low : nil
    }

    public func owner(of address: UInt64) -> (device: String, region: UInt32)? {
        find(address).map { (entries[$0].device.instanceName, entries[$0].region) }
    }

    /// One guest access; unclaimed reads return all ones.
    @inline(__always)
    public func dispatch(address: UInt64, size: UInt32, isWrite: Bool, data: inout UInt64) {
        guard let i = find(address) else {
            if !isWrite { data = size >= 8 ? .max : (UInt64(1) << (UInt64(size) * 8)) - 1 }
            return
        }
        let e = entries[i]
        e.device.io(region: e.region, offset: address - e.start, size: size,
                    flags: UInt32(VENEER_IO_MMIO) | (isWrite ? UInt32(VENEER_IO_WRITE) : 0), data: &data)
    }
}
