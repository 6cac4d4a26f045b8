/// The heartbeat body (icmsgtype 1):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | `seq_num`: the guest answers with seq_num + 1 |
/// | 8 | 4 | application state (OpenVMM: 0 unknown, 1 healthy, 2 critical, 3 stopped; Linux: reserved, left as sent) |
/// | 12 | 4 | reserved |
///
/// Linux declares 8 + 32 bytes but only requires the 8 of `seq_num` ("the host may not fill it
/// up entirely"); the host sends the 16 bytes above.
public struct HeartbeatMessage: Hashable, Sendable {
    public static let size = 16
    /// What a guest must send back at least: the sequence number.
    public static let minimumSize = 8

    public var sequenceNumber: UInt64
    /// nil when the body ends before it.
    public var applicationState: UInt32?

    public init(sequenceNumber: UInt64, applicationState: UInt32? = 0) {
        self.sequenceNumber = sequenceNumber
        self.applicationState = applicationState
    }

    public static func decode(_ body: ArraySlice<UInt8>) throws(ICWireError) -> HeartbeatMessage {
        var r = ICByteReader(body, structure: "IC heartbeat body")
        let sequence = try r.u64()
        let state: UInt32? = r.remaining >= 4 ? try r.u32() : nil
        return HeartbeatMessage(sequenceNumber: sequence, applicationState: state)
    }

    public func encode() -> [UInt8] {
        var w = ICByteWriter(capacity: Self.size)
        w.u64(sequenceNumber)
        w.u32(applicationState ?? 0)
        w.zeros(4)
        return w.bytes
    }
}

/// `application_state` values (OpenVMM's names).
public enum HeartbeatApplicationState {
    public static let unknown: UInt32 = 0
    public static let healthy: UInt32 = 1
    public static let critical: UInt32 = 2
    public static let stopped: UInt32 = 3

    public static func name(_ state: UInt32) -> String {
        switch state {
        case unknown: "unknown"
        case healthy: "healthy"
        case critical: "critical"
        case stopped: "stopped"
        default: "state \(state)"
        }
    }
}
