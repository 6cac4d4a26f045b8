import VeneerPluginKit

/// QEMU's firmware configuration device on its x86 ports: a selector (0x510, 16-bit writes), a
/// data port (0x511, byte reads that walk the selected item) and the DMA interface (0x514: the
/// big-endian address of an access structure, high half then low half, the low write starting
/// the transfer). It serves the machine's facts as firmware and test kernels expect them: CPU
/// count, RAM size, kernel/initrd/command line, the memory map, the boot order and the ACPI
/// tables with their linker/loader script. Every item is read-only.
///
/// DMA addresses and lengths come from the guest and are hostile: every guest access goes
/// through the host's bounds-checked calls, a failure sets the error bit, and a transfer never
/// allocates more than one bounded chunk however long it claims to be.
final class FWCfg: VeneerDevice {
    static let selectorRegion: UInt32 = 0
    static let dmaRegion: UInt32 = 1
    /// Zero-fill and copy in pieces of this size: the guest picks the length (up to 4 GiB).
    static let chunk = 64 * 1024

    let host: HostServices
    let dmaEnabled: Bool
    let bootOrder: String
    private var items: FWCfgItems
    private var factsLoaded = false
    private var selector: UInt16 = 0
    private var offset = 0
    private var dmaHigh: UInt32 = 0

    init(host: HostServices, port: UInt16, dma: Bool, bootOrder: String) throws(PluginError) {
        self.host = host
        dmaEnabled = dma
        self.bootOrder = bootOrder
        items = FWCfgItems(dma: dma)
        try host.registerPortIO(region: Self.selectorRegion, port: port, length: 2)
        if dma { try host.registerPortIO(region: Self.dmaRegion, port: port + 4, length: 8) }
    }

    func reset() {
        selector = 0
        offset = 0
        dmaHigh = 0
    }

    func start() { loadFacts() }

    /// The machine's facts, once the host has them (from the VM's start on).
    private func loadFacts() {
        guard !factsLoaded else { return }
        do {
            var facts = FWCfgItems.Facts()
            let wanted: [(HostServices.MachineFact, WritableKeyPath<FWCfgItems.Facts, [UInt8]>)] = [
                (.vcpuCount, \.vcpuCount), (.ramBytes, \.ramBytes), (.memoryMap, \.memoryMap), (.kernel, \.kernel),
                (.initrd, \.initrd), (.cmdline, \.cmdline), (.acpiTables, \.acpiTables), (.acpiRSDP, \.acpiRSDP),
                (.acpiLoader, \.acpiLoader),
            ]
            for (fact, field) in wanted {
                guard let bytes = try host.machineFact(fact) else { return }   // not built yet: ask again later
                facts[keyPath: field] = bytes
            }
            items = FWCfgItems(dma: dmaEnabled, facts: facts, bootOrder: bootOrder)
            factsLoaded = true
        } catch {
            host.log(.warning, "machine facts unavailable, serving only the signature: \(error)")
            factsLoaded = true
        }
    }

    func io(_ access: IOAccess, data: inout UInt64) {
        loadFacts()
        switch (access.region, access.offset, access.isWrite) {
        case (Self.selectorRegion, 0, true) where access.size == 2:
            select(UInt16(truncatingIfNeeded: data))
        case (Self.selectorRegion, 1, false):
            data = UInt64(readData(count: access.size).enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        case (Self.dmaRegion, let at, false):
            // The DMA port reads "QEMU CFG" in memory order.
            var value: UInt64 = 0
            for i in 0..<access.size where Int(at) + i < 8 {
                value |= UInt64(FWCfgDMAAccess.portSignature[Int(at) + i]) << (8 * UInt64(i))
            }
            data = value
        case (Self.dmaRegion, 0, true) where access.size == 4:
            dmaHigh = UInt32(truncatingIfNeeded: data).byteSwapped
        case (Self.dmaRegion, 4, true) where access.size == 4:
            let address = UInt64(dmaHigh) << 32 | UInt64(UInt32(truncatingIfNeeded: data).byteSwapped)
            dmaHigh = 0
            transfer(at: address)
        default:
            break   // data-port writes are ignored (read-only items), as are odd widths
        }
    }

    private func select(_ key: UInt16) {
        selector = key
        offset = 0
    }

    /// `count` bytes from the selected item at the current offset; past its end (or for an
    /// absent item) zeros.
    private func readData(count: Int) -> [UInt8] {
        let item = items.item(selector) ?? []
        var bytes = [UInt8](repeating: 0, count: count)
        for i in 0..<count where offset < item.count {
            bytes[i] = item[offset]
            offset += 1
        }
        return bytes
    }

    /// One DMA access at `address`: read the structure, select/skip/read/write as its control
    /// word says, write the control word back (0 or the error bit).
    private func transfer(at address: UInt64) {
        guard let raw = guestRead(address, count: FWCfgDMAAccess.size) else { return }   // no structure to answer in
        var access = FWCfgDMAAccess(raw)
        var failed = false
        if access.control & FWCfgDMAAccess.select != 0 { select(access.selector) }
        let item = items.item(selector) ?? []
        if access.control & FWCfgDMAAccess.read != 0 {
            failed = !copyOut(item, length: access.length, to: access.address)
        } else if access.control & FWCfgDMAAccess.write != 0 {
            failed = true   // nothing here is writable
        } else if access.control & FWCfgDMAAccess.skip != 0 {
            offset = min(item.count, offset + Int(access.length))
        }
        access.control = failed ? FWCfgDMAAccess.error : 0
        _ = guestWrite(address, Array(access.encoded.prefix(4)))
    }

    /// Copies `length` bytes of `item` from the offset to guest `address`, zeros past its end;
    /// false when any of it falls outside guest RAM (what was copied before that stays).
    private func copyOut(_ item: [UInt8], length: UInt32, to address: UInt64) -> Bool {
        var remaining = Int(length), at = address
        while remaining > 0 {
            guard at <= UInt64.max - UInt64(remaining) else { return false }
            let n = min(remaining, Self.chunk)
            var piece = [UInt8](repeating: 0, count: n)
            let available = max(0, min(n, item.count - offset))
            if available > 0 { piece.replaceSubrange(0..<available, with: item[offset..<offset + available]) }
            guard guestWrite(at, piece) else { return false }
            offset += available
            remaining -= n
            at += UInt64(n)
        }
        return true
    }

    private func guestRead(_ address: UInt64, count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        let ok = bytes.withUnsafeMutableBytes { b -> Bool in
            do { try host.readGuest(address, into: b); return true } catch { return false }
        }
        return ok ? bytes : nil
    }

    private func guestWrite(_ address: UInt64, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { b -> Bool in
            do { try host.writeGuest(address, from: b); return true } catch { return false }
        }
    }

    func save(to state: inout StateWriter) {
        state.write(selector)
        state.write(UInt32(offset))
        state.write(dmaHigh)
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        let selector: UInt16 = try state.read()
        let offset: UInt32 = try state.read()
        let high: UInt32 = try state.read()
        try state.finish()
        loadFacts()
        guard Int(offset) <= (items.item(selector)?.count ?? 0) else {
            throw StateError("offset \(offset) lies past the end of item \(selector)")
        }
        self.selector = selector
        self.offset = Int(offset)
        dmaHigh = high
    }

    static let definition = PluginDefinition(
        name: "fw-cfg",
        version: "1.0.0",
        summary: "QEMU's firmware configuration interface (ports 0x510/0x511, DMA at 0x514): CPUs, RAM, kernel, e820, ACPI",
        parameters: [
            ParameterSpec("port", .int(min: 0, max: 0xfff4), default: "0x510", doc: "selector port; data is port+1, DMA port+4..port+11"),
            ParameterSpec("dma", .bool, default: "true", doc: "offer the DMA interface (ID bit 1)"),
            ParameterSpec("bootorder", .string, default: "", doc: "the bootorder file: device paths, one per line (empty: no file)"),
        ]
    ) { host, params, _ throws(PluginError) in
        try FWCfg(host: host, port: UInt16(params.int("port")), dma: params.bool("dma"), bootOrder: params.string("bootorder"))
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: FWCfg.definition) }
