/// The payload of HVMSG_TIMER_EXPIRED (Linux `struct hv_timer_message_payload`, 24 bytes):
/// u32 timer_index, u32 reserved, u64 expiration_time, u64 delivery_time, both in reference time.
public struct TimerExpiredMessage: Equatable, Sendable {
    public static let messageType: UInt32 = 0x8000_0010
    public static let size = 24

    public var timerIndex: UInt32
    public var expirationTime: UInt64
    public var deliveryTime: UInt64

    public init(timerIndex: UInt32, expirationTime: UInt64, deliveryTime: UInt64) {
        self.timerIndex = timerIndex
        self.expirationTime = expirationTime
        self.deliveryTime = deliveryTime
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.u32(timerIndex)
        w.u32(0)
        w.u64(expirationTime)
        w.u64(deliveryTime)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(VMBusWireError) -> TimerExpiredMessage {
        var r = ByteReader(bytes, structure: "TimerExpiredMessage")
        let index = try r.u32()
        _ = try r.u32()
        return TimerExpiredMessage(timerIndex: index, expirationTime: try r.u64(), deliveryTime: try r.u64())
    }
}
