/// The anti-spoofing rule of a port: with spoofing off, a frame from the guest must carry the
/// NIC's own MAC as its source. netvsp asks per frame, before the frame reaches the switch.
public struct SourceMACCheck: Sendable, Equatable {
    public var mac: MACAddress
    public var allowSpoofing: Bool

    public init(mac: MACAddress, allowSpoofing: Bool) {
        self.mac = mac
        self.allowSpoofing = allowSpoofing
    }

    public init(_ spec: PortSpec) {
        self.init(mac: spec.mac, allowSpoofing: spec.allowMACSpoofing)
    }

    /// `frame` starts at the Ethernet header (destination, then source MAC). A frame too short to
    /// have a source is refused whatever the setting.
    public func permits(frame: UnsafeRawBufferPointer) -> Bool {
        guard frame.count >= 12 else { return false }
        if allowSpoofing { return true }
        let m = mac.bytes
        return frame[6] == m.0 && frame[7] == m.1 && frame[8] == m.2 && frame[9] == m.3 && frame[10] == m.4 && frame[11] == m.5
    }

    public func permits(frame: [UInt8]) -> Bool {
        frame.withUnsafeBytes { permits(frame: $0) }
    }
}
