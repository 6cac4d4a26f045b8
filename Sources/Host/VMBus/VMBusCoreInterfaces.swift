/// What the VMBus layer needs from the rest of the VMM, as small protocols so that it runs (and is
/// tested) without a vCPU. The core implements them over KVM and the SynIC; tests use recorders.

/// Guest-physical memory as VMBus uses it: range checks for GPADL and GPA-direct PFNs, and byte
/// copies for ring buffers. Reads and writes are plain copies: the guest may change the memory at
/// any time, so every value read is validated by the caller.
public protocol GuestMemoryAccess: AnyObject, Sendable {
    /// True when every byte of [address, address + length) is guest RAM (not ROM, not MMIO).
    func isRAM(_ address: UInt64, length: UInt64) -> Bool
    func readBytes(_ address: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8]
    func writeBytes(_ bytes: ArraySlice<UInt8>, at address: UInt64) throws(GuestMemoryError)
    /// One aligned 32-bit load, so a ring index is never seen half-written.
    func readUInt32(_ address: UInt64) throws(GuestMemoryError) -> UInt32
    /// One aligned 32-bit store.
    func writeUInt32(_ value: UInt32, at address: UInt64) throws(GuestMemoryError)
}

/// The SynIC message path to the guest (implemented by the SynIC emulation).
public protocol SynICMessageSink: AnyObject, Sendable {
    /// Queues a message (payload at most 240 bytes) for the SINT `sint` slot of VP `vp`. Messages
    /// to one (vp, sint) are delivered in order: when the slot is busy the SynIC keeps the message,
    /// sets "message pending" and delivers it after the guest's EOM.
    func post(vp: UInt32, sint: UInt8, messageType: UInt32, payload: [UInt8])
    /// Messages queued for (vp, sint) and not yet in the slot. VMBus refuses new guest posts with
    /// HV_STATUS_INSUFFICIENT_BUFFERS while this is at its limit, so a guest that never frees its
    /// slot cannot make the host queue grow without bound.
    func pendingMessageCount(vp: UInt32, sint: UInt8) -> Int
}

/// Host-to-guest channel interrupts (implemented by the SynIC emulation).
public protocol GuestSignaller: AnyObject, Sendable {
    /// Sets bit `eventFlag` in the SINT `sint` row of VP `vp`'s SynIC event-flags page and, when
    /// the bit was clear and the SINT is unmasked, injects the SINT's vector.
    func signal(vp: UInt32, sint: UInt8, eventFlag: UInt32)
}

/// Where VMBus diagnostics go. The core passes its `Logger`; tests capture the lines.
public protocol VMBusLogSink: AnyObject, Sendable {
    func log(_ level: Logger.Level, _ message: String)
    /// Whether debug lines are wanted: building them (message summaries) is skipped otherwise.
    var logsDebug: Bool { get }
}

extension VMBusLogSink {
    public var logsDebug: Bool { true }
}

extension Logger: VMBusLogSink {
    public func log(_ level: Level, _ message: String) { log(level, "vmbus", message) }
    public var logsDebug: Bool { threshold >= .debug }
}
