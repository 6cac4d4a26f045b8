/// AML opcodes and prefixes this builder emits (ACPI 6.5, 20.3).
enum AMLOpcode {
    static let zero: UInt8 = 0x00
    static let one: UInt8 = 0x01
    static let ones: UInt8 = 0xFF
    static let bytePrefix: UInt8 = 0x0A
    static let wordPrefix: UInt8 = 0x0B
    static let dwordPrefix: UInt8 = 0x0C
    static let stringPrefix: UInt8 = 0x0D
    static let qwordPrefix: UInt8 = 0x0E
    static let name: UInt8 = 0x08
    static let scope: UInt8 = 0x10
    static let buffer: UInt8 = 0x11
    static let package: UInt8 = 0x12
    static let method: UInt8 = 0x14
    static let `return`: UInt8 = 0xA4
    static let extendedPrefix: UInt8 = 0x5B
    static let device: UInt8 = 0x82 // after extendedPrefix
}
