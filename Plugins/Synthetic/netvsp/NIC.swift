import NVSPProtocol
import RNDISProtocol
import Synchronization
import VeneerNet

/// What every channel of one NIC shares: the negotiated protocol, the guest's receive and send
/// buffers, the RNDIS state (filter, offloads, RSS), the receive-section pool, the port's queue
/// fds and the counters. Each part has its own short lock; none is held while another is taken,
/// except the pool's inside a channel's (never the reverse).
final class NIC: Sendable {
    /// The receive buffer as the guest gave it, split into equal sections.
    struct ReceiveBuffer: Sendable {
        var map: GuestBufferMap
        var setID: UInt16
        var gpadl: UInt32
        var sectionSize: Int
        var sectionCount: Int
    }

    struct SendBuffer: Sendable {
        var map: GuestBufferMap
        var gpadl: UInt32
        var sectionSize: Int
        var sectionCount: Int
    }

    struct RSS: Sendable, Equatable {
        var enabled = false
        var key: [UInt8] = []
        var table: [UInt32] = []
    }

    struct State: Sendable {
        var version: NVSPVersion?
        var receive: ReceiveBuffer?
        var send: SendBuffer?
        var rndisInitialized = false
        var packetFilter: UInt32 = 0
        var rss = RSS()
        /// Channel ids by queue index (0: the primary); nil while a sub-channel is not open.
        var channels: [UInt32?] = []
        var mac: MACAddress
        /// What the guest was last told (media connect / disconnect).
        var reportedLinkUp = true
        /// The management `link` op's override (a disconnected cable).
        var administrativelyUp = true
        var checksumOffload = true
        var lsoOffload = true
    }

    /// A consistent view for one receive drain.
    struct ReceiveView: Sendable {
        var buffer: ReceiveBuffer
        var version: NVSPVersion
        var filter: UInt32
        var mac: MACAddress
        var rss: RSS
        var channels: [UInt32?]
    }

    let configuration: NICConfiguration
    let queueFDs: [Int32]
    let metrics: NetMetrics
    let state: Mutex<State>
    let pool = Mutex<SectionPool>(SectionPool(count: 0))
    let bucket: Mutex<TokenBucket?>

    /// Where a received frame starts inside its section: room for the RNDIS header, the packet
    /// message and three PPIs (92 bytes) plus 4 for a stripped VLAN tag, rounded up.
    static let receiveDataStart = 128
    static let sendSectionSize = 6144
    /// Larger buffers than this are refused (Linux asks 16 MiB, at most 31 MiB).
    static let maxBufferBytes = 64 << 20
    static let maxSections = 65536

    init(configuration: NICConfiguration, queueFDs: [Int32], metrics: NetMetrics, mac: MACAddress) {
        self.configuration = configuration
        self.queueFDs = queueFDs
        self.metrics = metrics
        state = Mutex(State(mac: mac))
        bucket = Mutex(configuration.bandwidthBitsPerSecond.map { TokenBucket(bitsPerSecond: $0) })
    }

    var receiveSectionSize: Int { (Self.receiveDataStart + configuration.maxFrame + 7) & ~7 }

    /// The view a receive drain works from, or nil when frames cannot go to the guest now.
    func receiveView() -> ReceiveView? {
        state.withLock { s in
            guard let buffer = s.receive, let version = s.version, s.rndisInitialized, s.packetFilter != 0,
                  s.reportedLinkUp, !s.channels.isEmpty
            else { return nil }
            return ReceiveView(buffer: buffer, version: version, filter: s.packetFilter, mac: s.mac, rss: s.rss, channels: s.channels)
        }
    }

    var mac: MACAddress { state.withLock { $0.mac } }

    /// The queue fd a channel's guest frames go out on.
    func transmitFD(queue: Int) -> Int32 { queueFDs[queue % queueFDs.count] }

    /// Installs a new receive buffer and a fresh pool whose ids never match the old one's.
    func installReceiveBuffer(_ buffer: ReceiveBuffer?) {
        state.withLock { $0.receive = buffer }
        pool.withLock { pool in pool = SectionPool(count: buffer?.sectionCount ?? 0, firstGeneration: pool.generationAfter) }
    }

    /// Forgets what the guest set up (channel closed or reset): buffers, RNDIS, RSS, channels.
    func forgetGuest() {
        state.withLock { s in
            s.version = nil
            s.receive = nil
            s.send = nil
            s.rndisInitialized = false
            s.packetFilter = 0
            s.rss = RSS()
            s.channels = []
        }
        installReceiveBuffer(nil)
    }
}
