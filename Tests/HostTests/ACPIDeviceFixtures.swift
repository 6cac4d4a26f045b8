import Foundation
@testable import VeneerHost

/// The standard Generation 1 device set with the plugins' default ports and lines.
let gen1Devices: [ACPIDevice] = [
    .serial(port: 0x3F8, irq: 4), .rtc(irq: 8), .pit(port: 0x40, irq: 0),
    .keyboard(keyboardIRQ: 1, mouseIRQ: 12), .powerManagement(PowerManagementBlocks()),
]

/// Where committed golden files live (outside any target, so SwiftPM ignores them).
let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Golden/acpi")
