/// Bounds on everything a guest can make the VMBus host allocate or keep. Defaults fit Linux's
/// drivers (netvsc's 16 MiB receive buffer is a 4096-page GPADL) with room to spare.
public struct VMBusLimits: Sendable, Equatable {
    /// Channels the host will register (relids are 1...2047: one event-flag bit each).
    public var maxChannels = 256
    /// PFNs in one GPADL. range_buflen is a u16, so no GPADL can describe more than 8190.
    public var maxPFNsPerGPADL = 8192
    /// GPADLs (complete or being built) per channel.
    public var maxGPADLsPerChannel = 64
    /// GPADLs in the whole partition.
    public var maxGPADLs = 1024
    /// PFNs (plus one header word per range) across all GPADLs: caps host memory for GPADL
    /// bookkeeping at 8 bytes each.
    public var maxTotalGPADLPFNs = 1 << 20
    /// Ranges in one GPA-direct packet.
    public var maxGPADirectRanges = 256
    /// Messages queued towards the guest's message slot before guest posts are refused with
    /// HV_STATUS_INSUFFICIENT_BUFFERS (the guest retries).
    public var maxPendingMessages = 64

    public init() {}

    /// Sub-channels one primary may have at once (storvsc asks for one per vCPU; netvsc for up
    /// to 64 queues).
    public static let maxSubchannels = 64

    /// The highest relid: event-flag bits per SINT (2048) minus the reserved bit 0.
    public static let maxRelid: UInt32 = 2047
}
