import Synchronization
import Testing
import VMBusProtocol
@testable import VeneerHost

// Fakes for the core services VMBus needs, a scripted guest that speaks the channel-management
// protocol the way Linux's hv_vmbus does, and a guest-side ring implementation written from the
// Linux rules independently of RingReader/RingWriter, so the two sides check each other.

final class MessageRecorder: SynICMessageSink {
    struct Posted: Sendable {
        let vp: UInt32
        let sint: UInt8
        let messageType: UInt32
        let payload: [UInt8]
    }

    private let posted = Mutex<[Posted]>([])
    /// What `pendingMessageCount` reports: a test sets it to play a guest that never EOMs.
    let pending = Mutex(0)

    func post(vp: UInt32, sint: UInt8, messageType: UInt32, payload: [UInt8]) {
        posted.withLock { $0.append(Posted(vp: vp, sint: sint, messageType: messageType, payload: payload)) }
    }

    func pendingMessageCount(vp: UInt32, sint: UInt8) -> Int { pending.withLock { $0 } }

    /// Everything posted since the last call.
    func take() -> [Posted] { posted.withLock { all in defer { all = [] }; return all } }
}

final class SignalRecorder: GuestSignaller {
    struct Signal: Equatable, Sendable {
        let vp: UInt32
        let sint: UInt8
        let flag: UInt32
    }

    private let signals = Mutex<[Signal]>([])
    func signal(vp: UInt32, sint: UInt8, eventFlag: UInt32) { signals.withLock { $0.append(Signal(vp: vp, sint: sint, flag: eventFlag)) } }
    func take() -> [Signal] { signals.withLock { all in defer { all = [] }; return all } }
}

final class LogRecorder: VMBusLogSink {
    private let lines = Mutex<[(level: Logger.Level, message: String)]>([])
    func log(_ level: Logger.Level, _ message: String) { lines.withLock { $0.append((level, message)) } }
    var all: [String] { lines.withLock { $0.map(\.message) } }
    /// The lines above debug level: the ones the diagnostics throttle (debug lines are every
    /// channel message, wanted in full by whoever turns debug on).
    var throttled: [String] { lines.withLock { $0.filter { $0.level < .debug }.map(\.message) } }
}

/// A VSP that records its events and, if asked, echoes every in-band packet back as a completion.
final class RecordingVSP: VMBusChannelHandler {
    struct Events: Sendable {
        var opened: [[UInt8]] = []
        var signalled = 0
        var closed = 0
    }

    let events = Mutex(Events())
    let acceptOpen: Bool

    init(acceptOpen: Bool = true) { self.acceptOpen = acceptOpen }

    func channelOpened(_ channel: VMBusChannel, userData: [UInt8]) -> Bool {
        events.withLock { $0.opened.append(userData) }
        return acceptOpen
    }

    func channelSignalled(_ channel: VMBusChannel) { events.withLock { $0.signalled += 1 } }
    func channelClosed(_ channel: VMBusChannel) { events.withLock { $0.closed += 1 } }
    var snapshot: Events { events.withLock { $0 } }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A VMBus host over 16 MiB of real guest RAM, with recorders for everything it sends.
final class VMBusTestBed {
    let memory: GuestMemory
    let messages = MessageRecorder()
    let signals = SignalRecorder()
    let log = LogRecorder()
    let host: VMBusHost
    let limits: VMBusLimits

    init(vpCount: UInt32 = 2, limits: VMBusLimits = VMBusLimits()) throws {
        memory = try GuestMemory(map: try MemoryMap.pc(ramBytes: 16 << 20))
        self.limits = limits
        host = VMBusHost(vpCount: vpCount, memory: memory, messages: messages, signaller: signals, log: log, limits: limits)
    }

    @discardableResult
    func post(_ message: ChannelMessage, connectionID: UInt32 = VMBusHost.messageConnectionID, vp: UInt32 = 0) -> HypercallStatus {
        host.handlePostMessage(connectionID: connectionID, messageType: 1, payload: message.encode(), vp: vp)
    }

    @discardableResult
    func postRaw(_ payload: [UInt8], connectionID: UInt32 = VMBusHost.messageConnectionID) -> HypercallStatus {
        host.handlePostMessage(connectionID: connectionID, messageType: 1, payload: payload, vp: 0)
    }

    /// Channel messages the host sent since the last call, decoded; every one must decode and fit
    /// a SynIC slot.
    func replies() throws -> [ChannelMessage] {
        try messages.take().map { posted in
            #expect(posted.messageType == 1)
            #expect(posted.payload.count <= 240)
            return try ChannelMessage.decode(posted.payload)
        }
    }

    /// INITIATE_CONTACT as Linux sends it for `version` (connection id 4 and msg_sint from 5.0).
    func contact(_ version: VMBusVersion, targetVCPU: UInt32 = 0, sint: UInt8 = 2, vtl: UInt8 = 0) -> HypercallStatus {
        let modern = version >= .win10_5_0
        let info: UInt64 = modern ? UInt64(sint) | UInt64(vtl) << 8 : 0x7000_0000
        return post(.initiateContact(InitiateContact(versionRequested: version.rawValue, targetVCPU: targetVCPU,
                                                     interruptPageOrTargetInfo: info, monitorPage1: 0x1000, monitorPage2: 0x2000)),
                    connectionID: modern ? VMBusHost.initiateContactConnectionID : VMBusHost.messageConnectionID)
    }

    func connect(_ version: VMBusVersion = .win10_5_3) throws -> VersionResponse {
        #expect(contact(version) == .success)
        guard case .versionResponse(let response)? = try replies().first else { throw TestFailure("no VERSION_RESPONSE") }
        return response
    }

    /// REQUESTOFFERS: returns the offers, checking ALLOFFERS_DELIVERED comes last.
    func requestOffers() throws -> [OfferChannel] {
        #expect(post(.requestOffers) == .success)
        let all = try replies()
        guard all.last == .allOffersDelivered else { throw TestFailure("offers not ended by ALLOFFERS_DELIVERED: \(all)") }
        return all.dropLast().compactMap { if case .offerChannel(let offer) = $0 { offer } else { nil } }
    }

    /// A GPADL split the way Linux splits it: range words after the 20-byte header up to the
    /// 240-byte limit (27 words), the rest 28 words per GPADL_BODY.
    static func gpadlMessages(relid: UInt32, gpadl: UInt32, ranges: [GPARange]) -> [ChannelMessage] {
        let words = ranges.flatMap(\.words)
        var messages: [ChannelMessage] = [.gpadlHeader(GPADLHeader(
            childRelid: relid, gpadl: gpadl, rangeBufferLength: UInt16(truncatingIfNeeded: words.count * 8),
            rangeCount: UInt16(ranges.count), rangeWords: Array(words.prefix(27))))]
        var rest = words.dropFirst(27)
        while !rest.isEmpty {
            messages.append(.gpadlBody(GPADLBody(gpadl: gpadl, words: Array(rest.prefix(28)))))
            rest = rest.dropFirst(28)
        }
        return messages
    }

    /// Creates a one-range GPADL over whole pages; returns the host's replies.
    func createGPADL(relid: UInt32, gpadl: UInt32, pfns: [UInt64]) throws -> [ChannelMessage] {
        let range = GPARange(byteCount: UInt32(pfns.count * 4096), byteOffset: 0, pfns: pfns)
        for message in Self.gpadlMessages(relid: relid, gpadl: gpadl, ranges: [range]) {
            #expect(post(message) == .success)
        }
        return try replies()
    }

    /// Ring pages for one channel as Linux lays them out: `outPages` guest-to-host pages, then
    /// `inPages` host-to-guest pages, control pages zeroed with feature bit 0 set, at `base`.
    /// `shuffle` reverses each ring's data pages in guest-physical order (non-contiguous rings).
    func ringPages(base: UInt64, outPages: Int, inPages: Int, shuffle: Bool = false) throws -> (pfns: [UInt64], toHost: GuestRing, toGuest: GuestRing) {
        let first = base >> 12
        var outbound = (0..<UInt64(outPages)).map { first + $0 }
        var inbound = (0..<UInt64(inPages)).map { first + UInt64(outPages) + $0 }
        if shuffle {
            outbound = [outbound[0]] + outbound.dropFirst().reversed()
            inbound = [inbound[0]] + inbound.dropFirst().reversed()
        }
        try memory.load([UInt8](repeating: 0, count: (outPages + inPages) * 4096), at: base)
        let toHost = GuestRing(memory: memory, pfns: outbound)
        let toGuest = GuestRing(memory: memory, pfns: inbound)
        try toHost.set(RingControlPage.featureBitsOffset, 1)
        try toGuest.set(RingControlPage.featureBitsOffset, 1)
        return (outbound + inbound, toHost, toGuest)
    }
}

/// The guest's side of one ring, implemented from Linux's `ring_buffer.c` rules.
struct GuestRing {
    let memory: GuestMemory
    /// Control page first, then data pages.
    let pfns: [UInt64]

    var dataSize: Int { (pfns.count - 1) * 4096 }

    func get(_ field: Int) throws -> UInt32 { try memory.readValue(pfns[0] << 12 + UInt64(field), as: UInt32.self) }
    func set(_ field: Int, _ value: UInt32) throws { try memory.writeValue(value, at: pfns[0] << 12 + UInt64(field)) }

    private func address(_ position: Int) -> UInt64 { pfns[1 + position / 4096] << 12 + UInt64(position % 4096) }

    func copyIn(_ bytes: [UInt8], at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let position = (offset + done) % dataSize
            let chunk = min(bytes.count - done, 4096 - position % 4096)
            try memory.load(Array(bytes[done..<done + chunk]), at: address(position))
            done += chunk
        }
    }

    func copyOut(at offset: Int, count: Int) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while bytes.count < count {
            let position = (offset + bytes.count) % dataSize
            let chunk = min(count - bytes.count, 4096 - position % 4096)
            bytes += try memory.bytes(address(position), count: chunk)
        }
        return bytes
    }

    func bytesToWrite() throws -> Int {
        let write = Int(try get(0)), read = Int(try get(4))
        return write >= read ? dataSize - (write - read) : read - write
    }

    /// hv_ringbuffer_write: false when the packet does not fit (room must exceed it). `signal`:
    /// interrupt_mask clear and the ring was empty before this write.
    func write(type: UInt16, flags: UInt16 = 0, transactionID: UInt64, body: [UInt8]) throws -> (written: Bool, signal: Bool) {
        let length = (16 + body.count + 7) & ~7
        let total = length + 8
        guard try bytesToWrite() > total else { return (false, false) }
        let old = try get(0)
        var packet = PacketDescriptor(type: type, dataOffset8: 2, length8: UInt16(length / 8), flags: flags,
                                      transactionID: transactionID).encode() + body
        packet += [UInt8](repeating: 0, count: length - packet.count)
        packet += LittleEndian.bytes(of: UInt64(old) << 32)
        try copyIn(packet, at: Int(old))
        try set(0, UInt32((Int(old) + total) % dataSize))
        let mask = try get(8), read = try get(4)
        return (true, mask == 0 && read == old)
    }

    /// Writes raw packet bytes (descriptor already inside) with trailer, no checks: for
    /// GPA-direct packets and for hostile ones.
    func writeRaw(_ packet: [UInt8]) throws {
        let old = try get(0)
        try copyIn(packet + LittleEndian.bytes(of: UInt64(old) << 32), at: Int(old))
        try set(0, UInt32((Int(old) + packet.count + 8) % dataSize))
    }

    /// hv_pkt_iter_first/next/close for one packet. `signal`: the host set pending_send_sz, had
    /// at most that much room before this read, and has at least that much now.
    func read() throws -> (descriptor: PacketDescriptor, body: [UInt8], signal: Bool)? {
        let write = Int(try get(0)), read = Int(try get(4))
        guard write != read else { return nil }
        let descriptor = try PacketDescriptor.decode(try copyOut(at: read, count: 16))
        let body = try copyOut(at: (read + descriptor.dataOffset) % dataSize, count: descriptor.length - descriptor.dataOffset)
        let before = try bytesToWrite()
        try set(4, UInt32((read + descriptor.length + 8) % dataSize))
        var signal = false
        if try get(RingControlPage.featureBitsOffset) & 1 != 0 {
            let pending = Int(try get(RingControlPage.pendingSendSizeOffset))
            let after = try bytesToWrite()
            signal = pending != 0 && before <= pending && after >= pending
        }
        return (descriptor, body, signal)
    }
}

/// A deterministic generator (SplitMix64) so fuzz failures reproduce from the seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
