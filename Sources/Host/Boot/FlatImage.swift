/// A raw binary loaded at a fixed guest-physical address and entered in a chosen CPU mode.
public struct FlatImage: Sendable, Equatable {
    public var path: String
    public var mode: CPUMode
    public var loadAddress: UInt64
    public var entry: UInt64

    public init(path: String, mode: CPUMode, loadAddress: UInt64? = nil, entry: UInt64? = nil) {
        self.path = path
        self.mode = mode
        self.loadAddress = loadAddress ?? mode.defaultLoadAddress
        self.entry = entry ?? self.loadAddress
    }

    /// Copies the image into guest RAM after checking it fits, leaves the mode's tables alone and
    /// contains its entry point. Every vCPU starts at the entry (the flat contract, `CPUMode`).
    /// `e820`: the image must lie in memory the guest is told is usable, so it can never cover
    /// firmware tables or the BIOS area.
    public func load(into memory: GuestMemory, e820: E820Map? = nil) throws(BootError) -> BootEntry {
        func fail(_ reason: String) -> BootError { BootError(image: path, reason: reason) }
        let bytes: [UInt8]
        do { bytes = try BootFile.read(path, role: "boot image", key: "boot.image", limit: memory.map.ramBytes).bytes } catch {
            // A flat image larger than RAM gets the placement message below, as before.
            guard error.reason.hasPrefix("it is larger than guest RAM") else { throw error }
            throw fail("\(error.reason): it does not fit in guest RAM (\(memory.map.ramBytes >> 20) MiB)")
        }
        guard !bytes.isEmpty else { throw fail("the file is empty") }
        let size = UInt64(bytes.count)
        guard loadAddress <= UInt64.max - size,
              memory.map.region(containing: loadAddress, length: size)?.kind == .ram
        else {
            throw fail("\(size) bytes at \(hex(loadAddress)) do not fit in guest RAM (\(memory.map.ramBytes >> 20) MiB)")
        }
        if let e820, !e820.usableRanges.contains(where: { $0.lowerBound <= loadAddress && loadAddress + size <= $0.upperBound }) {
            let clash = e820.entries.first { $0.kind != .usable && $0.start < loadAddress + size && loadAddress < $0.end }
            throw fail("\(size) bytes at \(hex(loadAddress)) overlap memory reserved for the firmware"
                       + (clash.map { " (\(hex($0.start))-\(hex($0.end - 1)), e820 type \($0.kind.rawValue))" } ?? ""))
        }
        for r in mode.reservedRanges where loadAddress < r.end && r.start < loadAddress + size {
            throw fail("it overlaps the \(r.name) at \(hex(r.start))-\(hex(r.end - 1)) that \(mode.rawValue)-mode boot uses")
        }
        guard entry >= loadAddress, entry - loadAddress < size else {
            throw fail("entry \(hex(entry)) lies outside the image (\(hex(loadAddress))+\(hex(size)))")
        }
        if mode == .real, entry > 0xFFFF {
            throw fail("real-mode entry \(hex(entry)) must be below 0x10000 (CS is 0)")
        }
        do {
            try mode.writeTables(into: memory)
            try memory.load(bytes, at: loadAddress)
        } catch {
            throw fail(error.description)
        }
        return BootEntry(state: EntryState(mode: mode, rip: entry), startsAllVCPUs: true)
    }
}
