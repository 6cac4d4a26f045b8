/// The side of a registered PCI function the bus calls back: the host of the plugin instance
/// that registered it (the VMM's `DeviceContext`, or the test harness's `FakeHost`).
public protocol PCIFunctionOwner: AnyObject, Sendable {
    /// Places the BAR region `region` at [base, base + length) in I/O or memory space, as the
    /// instance's own region. False, with nothing placed, when the range is not free (RAM, ROM,
    /// another region) or not valid there.
    func mapBAR(region: UInt32, io: Bool, base: UInt64, length: UInt64) -> Bool
    func unmapBAR(region: UInt32)
    /// Whether the plugin has a pci_config callback.
    var handlesPCIConfig: Bool { get }
    /// Calls the plugin's pci_config callback (if it has none, *data stays as it is).
    func forwardPCIConfig(function: UInt32, offset: UInt32, size: UInt32, flags: UInt32, data: inout UInt32)
}
