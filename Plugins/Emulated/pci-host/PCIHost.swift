import VeneerPluginKit

/// PCI configuration mechanism #1, as on a PC's host bridge: CONFIG_ADDRESS at port 0xCF8 and
/// CONFIG_DATA at 0xCFC-0xCFF. It holds only the address register; every configuration access
/// goes to the core's PCI bus (`pciConfigAccess`), which owns bus 0 and its host bridge at
/// 00:00.0 (the core's, so the bus looks the same whichever mechanism reaches it).
///
/// CONFIG_ADDRESS: bit 31 enables, bits 23-16 bus, 15-11 device, 10-8 function, 7-2 the dword
/// register; bits 30-24 and 1-0 are reserved and read 0. Only a dword access at 0xCF8 reaches it:
/// narrower ones are ordinary I/O that no device here answers (Linux probes mechanism #2 with a
/// byte write to 0xCFB, which must leave CONFIG_ADDRESS alone).
///
/// CONFIG_DATA: while enabled, an access at 0xCFC + n of size s reaches bytes n..n+s-1 of the
/// addressed dword. An access that is not naturally aligned is split into bytes; bytes past 0xCFF
/// (a word at 0xCFF) are outside this window, so they read all ones. Disabled: reads all ones,
/// writes go nowhere.
final class PCIHost: VeneerDevice {
    static let addressPort: UInt16 = 0xCF8
    static let dataPort: UInt16 = 0xCFC

    enum Region {
        static let address: UInt32 = 0
        static let data: UInt32 = 1
    }

    enum ConfigAddress {
        static let enable: UInt32 = 0x8000_0000
        /// Enable, bus, device, function and register: what the register keeps.
        static let kept: UInt32 = 0x80FF_FFFC
    }

    let host: HostServices
    private var configAddress: UInt32 = 0

    init(host: HostServices) throws(PluginError) {
        self.host = host
        try host.registerPortIO(region: Region.address, port: Self.addressPort, length: 4)
        try host.registerPortIO(region: Region.data, port: Self.dataPort, length: 4)
    }

    func reset() { configAddress = 0 }

    func io(_ access: IOAccess, data: inout UInt64) {
        switch access.region {
        case Region.address:
            guard access.offset == 0, access.size == 4 else { return }
            if access.isWrite {
                configAddress = UInt32(truncatingIfNeeded: data) & ConfigAddress.kept
            } else {
                data = UInt64(configAddress)
            }
        case Region.data:
            configData(lane: UInt32(truncatingIfNeeded: access.offset), size: access.size, isWrite: access.isWrite, data: &data)
        default:
            return
        }
    }

    private func configData(lane: UInt32, size: Int, isWrite: Bool, data: inout UInt64) {
        guard configAddress & ConfigAddress.enable != 0, lane < 4, (1...4).contains(size) else { return }
        let bdf = (configAddress >> 8) & 0xFFFF
        let register = configAddress & 0xFC
        if lane % UInt32(size) == 0, lane + UInt32(size) <= 4 {
            var value = UInt32(truncatingIfNeeded: data)
            _ = host.pciConfigAccess(bdf: bdf, offset: register + lane, size: size, isWrite: isWrite, data: &value)
            if !isWrite { data = UInt64(value) }
            return
        }
        // Unaligned: one byte at a time, as the byte enables of the bus cycle would select them.
        var result: UInt64 = 0
        for i in 0..<UInt32(size) {
            var byte = UInt32(truncatingIfNeeded: data >> (8 * UInt64(i))) & 0xFF
            if lane + i < 4 {
                _ = host.pciConfigAccess(bdf: bdf, offset: register + lane + i, size: 1, isWrite: isWrite, data: &byte)
            } else {
                byte = 0xFF
            }
            result |= UInt64(byte & 0xFF) << (8 * UInt64(i))
        }
        if !isWrite { data = result }
    }

    func save(to state: inout StateWriter) {
        state.write(configAddress)
    }

    func load(version: UInt32, from state: inout StateReader) throws(StateError) {
        let address: UInt32 = try state.read()
        try state.finish()
        guard address & ~ConfigAddress.kept == 0 else {
            throw StateError("CONFIG_ADDRESS \(address) has reserved bits set")
        }
        configAddress = address
    }

    static let definition = PluginDefinition(
        name: "pci-host",
        version: "1.0.0",
        summary: "PCI configuration mechanism #1 (ports 0xCF8/0xCFC) onto the core's PCI bus 0 and its 440BX host bridge",
        parameters: []
    ) { host, _, _ throws(PluginError) in
        try PCIHost(host: host)
    }
}

@_cdecl("veneer_plugin_entry")
public func veneerPluginEntry() -> UnsafeRawPointer { PluginExport.descriptor(for: PCIHost.definition) }
