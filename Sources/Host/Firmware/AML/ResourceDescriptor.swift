/// Resource data for _CRS (ACPI 6.5, 6.4): the small and large descriptors a PC's devices and
/// bridge windows need. `template` appends the end tag, whose checksum byte makes the 8-bit sum
/// of the whole template zero (ASL compilers write 0, "treat as valid"; both are conformant).
public enum ResourceDescriptor: Sendable, Equatable {
    public enum Trigger: Sendable, Equatable { case edge, level }
    public enum Polarity: Sendable, Equatable { case activeHigh, activeLow }

    /// `IO (Decode16|Decode10, minimum, maximum, alignment, length)`
    case io(minimum: UInt16, maximum: UInt16, alignment: UInt8, length: UInt8, decode16: Bool = true)
    /// `FixedIO (base, length)`: a 10-bit ISA address.
    case fixedIO(base: UInt16, length: UInt8)
    /// `IRQNoFlags () { irqs }`: edge-triggered, active-high, exclusive ISA IRQs 0-15.
    case irqNoFlags([UInt8])
    /// `IRQ (trigger, polarity, sharing) { irqs }` for ISA IRQs 0-15.
    case irq([UInt8], trigger: Trigger, polarity: Polarity, shared: Bool)
    /// `Interrupt (ResourceConsumer, trigger, polarity, sharing) { gsis }`: any GSI, e.g. IOAPIC pins 16-23.
    case interrupt([UInt32], trigger: Trigger, polarity: Polarity, shared: Bool)
    /// `Memory32Fixed (ReadWrite|ReadOnly, base, length)`
    case memory32Fixed(base: UInt32, length: UInt32, writable: Bool = true)
    /// `DWordMemory`/`QWordMemory`/`DWordIO`/`QWordIO`: a bridge window or consumed range.
    case addressSpace(AddressSpaceDescriptor)

    public static func template(_ descriptors: [ResourceDescriptor]) throws(AMLError) -> [UInt8] {
        var bytes: [UInt8] = []
        for descriptor in descriptors { bytes += try descriptor.encoded() }
        bytes.append(endTag)
        bytes.append(0 &- bytes.reduce(0, &+))
        return bytes
    }

    static let endTag: UInt8 = 0x79 // small item 0x0F, length 1

    public func encoded() throws(AMLError) -> [UInt8] {
        switch self {
        case .io(let minimum, let maximum, let alignment, let length, let decode16):
            guard minimum <= maximum else { throw .invalidResource("IO minimum \(hex(minimum)) above maximum \(hex(maximum))") }
            return [0x47, decode16 ? 1 : 0] + littleEndian(minimum) + littleEndian(maximum) + [alignment, length]
        case .fixedIO(let base, let length):
            guard base <= 0x3FF else { throw .invalidResource("FixedIO base \(hex(base)) is not a 10-bit ISA address") }
            return [0x4B] + littleEndian(base) + [length]
        case .irqNoFlags(let irqs):
            return [0x22] + littleEndian(try Self.isaMask(irqs))
        case .irq(let irqs, let trigger, let polarity, let shared):
            // Bit 0 _HE (1 = edge), bit 3 _LL (1 = active low), bit 4 _SHR.
            let flags: UInt8 = (trigger == .edge ? 0x01 : 0) | (polarity == .activeLow ? 0x08 : 0) | (shared ? 0x10 : 0)
            return [0x23] + littleEndian(try Self.isaMask(irqs)) + [flags]
        case .interrupt(let gsis, let trigger, let polarity, let shared):
            guard (1...255).contains(gsis.count) else { throw .invalidResource("Interrupt needs 1-255 numbers, not \(gsis.count)") }
            // Bit 0 consumer, bit 1 _HE (1 = edge), bit 2 _LL (1 = active low), bit 3 _SHR.
            let flags: UInt8 = 0x01 | (trigger == .edge ? 0x02 : 0) | (polarity == .activeLow ? 0x04 : 0) | (shared ? 0x08 : 0)
            let length = UInt16(2 + 4 * gsis.count)
            return [0x89] + littleEndian(length) + [flags, UInt8(gsis.count)] + gsis.flatMap { littleEndian($0) }
        case .memory32Fixed(let base, let length, let writable):
            guard length == 0 || UInt64(base) + UInt64(length) <= 1 << 32 else {
                throw .invalidResource("Memory32Fixed \(hex(base))+\(hex(length)) crosses 4 GiB")
            }
            return [0x86] + littleEndian(UInt16(9)) + [writable ? 1 : 0] + littleEndian(base) + littleEndian(length)
        case .addressSpace(let descriptor):
            return try descriptor.encoded()
        }
    }

    private static func isaMask(_ irqs: [UInt8]) throws(AMLError) -> UInt16 {
        var mask: UInt16 = 0
        for irq in irqs {
            guard irq < 16 else { throw .invalidResource("IRQ \(irq) is not an ISA IRQ (0-15); use Interrupt") }
            mask |= 1 << UInt16(irq)
        }
        return mask
    }
}

/// A Word, DWord or QWord address space descriptor (ACPI 6.5, 6.4.3.5.1-3).
public struct AddressSpaceDescriptor: Sendable, Equatable {
    public enum Width: Sendable, Equatable { case word, dword, qword }
    public enum Cacheability: UInt8, Sendable, Equatable {
        case nonCacheable = 0, cacheable = 1, writeCombining = 2, prefetchable = 3
    }
    public enum Kind: Sendable, Equatable {
        case memory(Cacheability, writable: Bool)
        /// I/O ports; the range flag is EntireRange (ISA and non-ISA addresses).
        case io
        /// PCI bus numbers a host bridge decodes (WordBusNumber in ASL).
        case busNumbers
    }

    public var width: Width
    public var kind: Kind
    /// A bridge window the device hands out (ResourceProducer) or a range it uses itself.
    public var producer: Bool
    public var minimum: UInt64
    public var maximum: UInt64
    public var granularity: UInt64
    public var translation: UInt64

    public init(width: Width, kind: Kind, producer: Bool, minimum: UInt64, maximum: UInt64,
                granularity: UInt64 = 0, translation: UInt64 = 0) {
        self.width = width
        self.kind = kind
        self.producer = producer
        self.minimum = minimum
        self.maximum = maximum
        self.granularity = granularity
        self.translation = translation
    }

    /// Always MinFixed, MaxFixed and PosDecode, so the length is exactly maximum - minimum + 1.
    func encoded() throws(AMLError) -> [UInt8] {
        guard minimum <= maximum, maximum - minimum < .max else {
            throw .invalidResource("address space \(hex(minimum))-\(hex(maximum)) is empty or spans all 64 bits")
        }
        let length = maximum - minimum + 1
        let fields = [granularity, minimum, maximum, translation, length]
        if width == .word, let big = fields.first(where: { $0 > UInt64(UInt16.max) }) {
            throw .invalidResource("Word address space field \(hex(big)) needs more than 16 bits; use DWord")
        }
        if width == .dword, let big = fields.first(where: { $0 > UInt64(UInt32.max) }) {
            throw .invalidResource("DWord address space field \(hex(big)) needs 64 bits; use QWord")
        }
        let resourceType: UInt8
        let typeFlags: UInt8
        switch kind {
        case .memory(let cacheability, let writable):
            resourceType = 0
            typeFlags = cacheability.rawValue << 1 | (writable ? 1 : 0)
        case .io:
            resourceType = 1
            typeFlags = 0x03
        case .busNumbers:
            resourceType = 2
            typeFlags = 0
        }
        // General flags: bit 3 MaxFixed, bit 2 MinFixed, bit 1 subtractive decode, bit 0 consumer.
        let generalFlags: UInt8 = 0x0C | (producer ? 0 : 0x01)
        var bytes: [UInt8]
        switch width {
        case .word:
            bytes = [0x88] + littleEndian(UInt16(13)) + [resourceType, generalFlags, typeFlags]
            for field in fields { bytes += littleEndian(UInt16(truncatingIfNeeded: field)) }
        case .dword:
            bytes = [0x87] + littleEndian(UInt16(23)) + [resourceType, generalFlags, typeFlags]
            for field in fields { bytes += littleEndian(UInt32(truncatingIfNeeded: field)) }
        case .qword:
            bytes = [0x8A] + littleEndian(UInt16(43)) + [resourceType, generalFlags, typeFlags]
            for field in fields { bytes += littleEndian(field) }
        }
        return bytes
    }
}
