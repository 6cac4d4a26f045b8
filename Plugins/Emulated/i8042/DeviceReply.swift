/// What a PS/2 device sends back for one byte it received: at most four bytes (the mouse's status
/// report), held inline so that answering a command on the exit path never allocates.
struct DeviceReply {
    static let capacity = 4

    private var storage = InlineArray<4, UInt8>(repeating: 0)
    private(set) var count = 0
    /// The device emptied its own output buffer before answering (reset, enable, disable, defaults).
    var flushesBuffer = false

    init() {}

    init(_ byte: UInt8) { append(byte) }

    mutating func append(_ byte: UInt8) {
        guard count < Self.capacity else { return }
        storage[count] = byte
        count += 1
    }

    subscript(index: Int) -> UInt8 { storage[index] }
}

/// Reply bytes shared by the keyboard and the mouse.
enum PS2Reply {
    static let acknowledge: UInt8 = 0xFA
    static let resend: UInt8 = 0xFE
    /// Basic assurance test passed.
    static let selfTestPassed: UInt8 = 0xAA
}
