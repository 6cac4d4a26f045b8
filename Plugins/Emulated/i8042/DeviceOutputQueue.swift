/// Bytes the keyboard and the aux device have sent that the controller has not yet moved into its
/// one-byte output buffer, oldest first across both devices. Each device holds at most
/// `perDevice` bytes (the 16-byte buffer of a PS/2 device). Inline storage, so that the exit path
/// never allocates; removing from the middle (a byte of the enabled device behind bytes of an
/// inhibited one) shifts at most 31 entries.
struct DeviceOutputQueue {
    enum Source: UInt8 {
        case keyboard = 0
        case aux = 1
    }

    static let perDevice = 16
    static let capacity = 2 * perDevice

    /// Low byte: the data; bit 8: from the aux device.
    private var entries = InlineArray<32, UInt16>(repeating: 0)
    private(set) var count = 0
    private var keyboardCount = 0
    private var auxCount = 0

    init() {}

    func count(from source: Source) -> Int { source == .aux ? auxCount : keyboardCount }

    /// Appends `byte`; false (nothing stored) when that device's buffer is full.
    mutating func push(_ byte: UInt8, from source: Source) -> Bool {
        guard count(from: source) < Self.perDevice, count < Self.capacity else { return false }
        entries[count] = UInt16(byte) | (source == .aux ? 0x100 : 0)
        count += 1
        if source == .aux { auxCount += 1 } else { keyboardCount += 1 }
        return true
    }

    /// The oldest byte from a device the controller is listening to, if any.
    func hasByte(keyboard: Bool, aux: Bool) -> Bool { firstIndex(keyboard: keyboard, aux: aux) != nil }

    /// Removes and returns the oldest byte from a device the controller is listening to.
    mutating func popFirst(keyboard: Bool, aux: Bool) -> (byte: UInt8, source: Source)? {
        guard let index = firstIndex(keyboard: keyboard, aux: aux) else { return nil }
        let entry = entries[index]
        for i in index..<(count - 1) { entries[i] = entries[i + 1] }
        count -= 1
        let source: Source = entry & 0x100 != 0 ? .aux : .keyboard
        if source == .aux { auxCount -= 1 } else { keyboardCount -= 1 }
        return (UInt8(truncatingIfNeeded: entry), source)
    }

    /// Drops what one device has queued (the device flushed its buffer), keeping the other's order.
    mutating func removeAll(from source: Source) {
        var kept = 0
        for i in 0..<count where (entries[i] & 0x100 != 0) != (source == .aux) {
            entries[kept] = entries[i]
            kept += 1
        }
        count = kept
        if source == .aux { auxCount = 0 } else { keyboardCount = 0 }
    }

    mutating func removeAll() {
        count = 0
        keyboardCount = 0
        auxCount = 0
    }

    /// Oldest first; for save (not the exit path).
    var contents: [(byte: UInt8, source: Source)] {
        (0..<count).map { (UInt8(truncatingIfNeeded: entries[$0]), entries[$0] & 0x100 != 0 ? .aux : .keyboard) }
    }

    private func firstIndex(keyboard: Bool, aux: Bool) -> Int? {
        for i in 0..<count {
            if entries[i] & 0x100 != 0 ? aux : keyboard { return i }
        }
        return nil
    }
}
