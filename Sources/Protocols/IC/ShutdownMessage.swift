/// The shutdown body (icmsgtype 3), Linux `shutdown_msg_data` (2060 bytes packed):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | `reason_code` (0x80000000: planned) |
/// | 4 | 4 | `timeout_seconds` |
/// | 8 | 4 | `flags` (`ShutdownFlags`) |
/// | 12 | 2048 | `display_message`: UTF-16LE, NUL-padded |
///
/// Linux drops a shutdown request whose body is shorter than the full 2060 bytes, so the host
/// always sends all of them.
public struct ShutdownMessage: Hashable, Sendable {
    public static let size = 2060
    public static let messageCapacity = 2048
    /// The most UTF-16 code units that fit `display_message`.
    public static let maximumMessageUnits = messageCapacity / 2

    public var reasonCode: UInt32
    public var timeoutSeconds: UInt32
    public var flags: ShutdownFlags
    /// UTF-16 code units of the message shown in the guest (no terminator).
    public var displayMessage: [UInt16]

    /// Nil when `displayMessage` does not fit its 2048 bytes.
    public init?(reasonCode: UInt32, timeoutSeconds: UInt32 = 0, flags: ShutdownFlags, displayMessage: [UInt16] = []) {
        guard displayMessage.count <= Self.maximumMessageUnits else { return nil }
        self.reasonCode = reasonCode
        self.timeoutSeconds = timeoutSeconds
        self.flags = flags
        self.displayMessage = displayMessage
    }

    public static func decode(_ body: ArraySlice<UInt8>) throws(ICWireError) -> ShutdownMessage {
        var r = ICByteReader(body, structure: "IC shutdown body")
        try r.require(size)
        let reason = try r.u32()
        let timeout = try r.u32()
        let flags = ShutdownFlags(rawValue: try r.u32())
        var units: [UInt16] = []
        for _ in 0..<maximumMessageUnits {
            let unit = try r.u16()
            if unit == 0 { break }
            units.append(unit)
        }
        // `units` holds at most maximumMessageUnits by construction.
        guard let message = ShutdownMessage(reasonCode: reason, timeoutSeconds: timeout, flags: flags, displayMessage: units) else {
            throw .invalidField(structure: "IC shutdown body", field: "display_message", value: UInt64(units.count))
        }
        return message
    }

    public func encode() -> [UInt8] {
        var w = ICByteWriter(capacity: Self.size)
        w.u32(reasonCode)
        w.u32(timeoutSeconds)
        w.u32(flags.rawValue)
        for unit in displayMessage { w.u16(unit) }
        w.zeros(Self.messageCapacity - 2 * displayMessage.count)
        return w.bytes
    }
}

/// `flags` of a shutdown request: bit 0 force, bit 1 restart, bit 2 hibernate (none: shut down).
public struct ShutdownFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let force = ShutdownFlags(rawValue: 0x1)
    public static let restart = ShutdownFlags(rawValue: 0x2)
    public static let hibernate = ShutdownFlags(rawValue: 0x4)
}

/// `reason_code` values a host sends.
public enum ShutdownReason {
    /// SHTDN_REASON_FLAG_PLANNED: what Hyper-V (and OpenVMM) send for a requested shutdown.
    public static let planned: UInt32 = 0x8000_0000
}
