/// Which default device set a VM gets, as in Hyper-V: Generation 1 is the standard PC hardware an
/// unenlightened guest expects; Generation 2 has nothing beyond what the config lists.
public enum Generation: Int, Sendable, Equatable {
    case one = 1
    case two = 2

    /// Devices a Generation 1 VM has (COM1, PIT, RTC, i8042, ACPI PM, and PCI configuration
    /// mechanism #1 in front of the core's host bridge at 00:00.0) unless the config lists a device of the same plugin, which
    /// then replaces the default (so `[[device]] plugin = "serial16550" port = 0x2f8` moves COM1).
    public var defaultDevices: [DeviceConfig] {
        guard self == .one else { return [] }
        return [
            DeviceConfig(id: "com1", plugin: "serial16550", path: nil, parameters: [:], key: "generation 1 default com1"),
            DeviceConfig(id: "pit", plugin: "pit8254", path: nil, parameters: [:], key: "generation 1 default pit"),
            DeviceConfig(id: "rtc", plugin: "cmos-rtc", path: nil, parameters: [:], key: "generation 1 default rtc"),
            DeviceConfig(id: "kbd", plugin: "i8042", path: nil, parameters: [:], key: "generation 1 default kbd"),
            DeviceConfig(id: "pm", plugin: "acpi-pm", path: nil, parameters: [:], key: "generation 1 default pm"),
            DeviceConfig(id: "pci", plugin: "pci-host", path: nil, parameters: [:], key: "generation 1 default pci"),
        ]
    }
}
