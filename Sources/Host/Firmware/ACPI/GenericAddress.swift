/// An ACPI Generic Address Structure (ACPI 6.5, 5.2.3.2): 12 bytes naming a register.
struct GenericAddress: Equatable {
    enum Space: UInt8 { case systemMemory = 0, systemIO = 1 }
    enum AccessSize: UInt8 { case undefined = 0, byte = 1, word = 2, dword = 3, qword = 4 }

    var space: Space
    var bitWidth: UInt8
    var bitOffset: UInt8 = 0
    var accessSize: AccessSize
    var address: UInt64

    static let null = GenericAddress(space: .systemMemory, bitWidth: 0, accessSize: .undefined, address: 0)

    /// A block of I/O ports, `length` bytes long, accessed `accessSize` at a time.
    static func ioPorts(_ port: UInt16, length: UInt8, accessSize: AccessSize) -> GenericAddress {
        GenericAddress(space: .systemIO, bitWidth: length &* 8, accessSize: accessSize, address: UInt64(port))
    }

    var encoded: [UInt8] { [space.rawValue, bitWidth, bitOffset, accessSize.rawValue] + littleEndian(address) }
}
