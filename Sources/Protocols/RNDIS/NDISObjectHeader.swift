/// `{u8 type; u8 revision; u16 size}` at the start of every NDIS object.
public struct NDISObjectHeader: Sendable, Equatable {
    public static let size = 4
    public static let typeDefault: UInt8 = 0x80
    public static let typeRSSCapabilities: UInt8 = 0x88
    public static let typeRSSParameters: UInt8 = 0x89
    public static let typeOffload: UInt8 = 0xA7

    public var type: UInt8
    public var revision: UInt8
    public var size: UInt16

    public init(type: UInt8, revision: UInt8, size: UInt16) {
        self.type = type
        self.revision = revision
        self.size = size
    }

    public init?(_ bytes: [UInt8]) {
        guard bytes.count >= Self.size else { return nil }
        type = bytes[0]
        revision = bytes[1]
        size = bytes.le(UInt16.self, at: 2)
    }

    public func encode(into bytes: inout [UInt8]) {
        bytes[0] = type
        bytes[1] = revision
        bytes.putLE(size, at: 2)
    }
}
