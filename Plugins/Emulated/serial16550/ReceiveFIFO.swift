/// The receiver FIFO as a ring over inline storage, so the VM-exit path never allocates.
/// In 16450 (non-FIFO) mode the device uses it with a capacity of one: the RBR.
struct ReceiveFIFO {
    static let depth = 16

    private var storage = InlineArray<16, UInt8>(repeating: 0)
    private var head = 0
    private(set) var count = 0

    init() {}

    /// A FIFO holding `bytes`, oldest first (the caller checks the count against `depth`).
    init(contents bytes: [UInt8]) {
        for byte in bytes.prefix(Self.depth) { push(byte) }
    }

    var isEmpty: Bool { count == 0 }

    /// Appends `byte`; the caller makes sure there is room (count < depth).
    mutating func push(_ byte: UInt8) {
        guard count < Self.depth else { return }
        storage[(head + count) % Self.depth] = byte
        count += 1
    }

    mutating func pop() -> UInt8? {
        guard count > 0 else { return nil }
        let byte = storage[head]
        head = (head + 1) % Self.depth
        count -= 1
        return byte
    }

    /// Replaces the newest byte: a 16450-mode overrun, where the new character overwrites the RBR.
    mutating func replaceNewest(with byte: UInt8) {
        guard count > 0 else { return push(byte) }
        storage[(head + count - 1) % Self.depth] = byte
    }

    mutating func removeAll() {
        head = 0
        count = 0
    }

    /// Oldest first; for save (not the exit path).
    var contents: [UInt8] { (0..<count).map { storage[(head + $0) % Self.depth] } }
}
