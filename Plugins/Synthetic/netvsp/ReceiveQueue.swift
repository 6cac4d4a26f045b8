import NVSPProtocol
import RNDISProtocol
import Synchronization
import VeneerNet
import VeneerPluginKit
#if canImport(Glibc)
import Glibc
#endif

/// Port to guest, for one queue fd: each frame is read with readv straight into a free receive
/// section (after room for its RNDIS header), its RNDIS packet message and PPIs (checksum result,
/// VLAN, RSS hash) are written in front of it, and the frames of one drain go out as one
/// transfer-page packet per channel — the channel the guest's RSS indirection table picks.
/// Everything used per frame is preallocated.
final class ReceiveQueue: Sendable {
    /// Sends a transfer-page packet on the channel of queue index `channel`; false when it could
    /// not be written (no such open channel, ring full).
    typealias Deliver = @Sendable (_ channel: Int, _ packet: OutgoingPacket) -> Bool

    let index: Int
    let fd: Int32
    private let nic: NIC
    private let host: HostServices
    private let deliver: Deliver
    private let state: Mutex<Reader>

    /// The most frames one drain reads before giving other work a turn.
    static let budget = 64

    private final class Reader: @unchecked Sendable {
        var watched = false
        let vectors = IOVecList(capacity: 8)
        /// 0..<12 virtio header; 16..<16+128 the frame's first bytes; 160..<256 an RNDIS prefix.
        let scratch = Scratch(256)
        var hashInput = [UInt8](repeating: 0, count: 36)
        /// Per target channel: the drain's ranges and its section chain.
        var ranges: [[TransferPageRange]] = (0..<64).map { _ in
            var r: [TransferPageRange] = []
            r.reserveCapacity(ReceiveQueue.budget)
            return r
        }
        var heads = [UInt32?](repeating: nil, count: 64)
        var tails = [UInt32?](repeating: nil, count: 64)
        var header = [UInt8](repeating: 0, count: TransferPageHeader.size(ranges: ReceiveQueue.budget))
    }

    init(index: Int, fd: Int32, nic: NIC, host: HostServices, deliver: @escaping Deliver) {
        self.index = index
        self.fd = fd
        self.nic = nic
        self.host = host
        self.deliver = deliver
        state = Mutex(Reader())
    }

    var token: UInt64 { ReceiveQueue.tokenBase | UInt64(index) }
    static let tokenBase: UInt64 = 0x4E45_5400_0000_0000

    /// The fd is readable, or sections came back, or the NIC's state changed: read what the guest
    /// can take now, watching the fd only while it can take more.
    func drain() {
        state.withLock { reader in
            guard let view = nic.receiveView() else {
                setWatched(reader, false)
                return
            }
            var frames = 0
            while frames < Self.budget {
                guard let taken = readFrame(reader, view) else { break }
                if taken { frames += 1 }
            }
            flush(reader, view)
            // Out of sections: wait for completions (they post work) rather than spin on the fd.
            let index = self.index
            let more = nic.pool.withLock { pool -> Bool in
                if pool.freeCount == 0 { pool.wait(index) }
                return pool.freeCount > 0
            }
            setWatched(reader, more)
        }
    }

    func stop() { state.withLock { setWatched($0, false) } }

    private func setWatched(_ reader: Reader, _ on: Bool) {
        guard reader.watched != on else { return }
        if on {
            reader.watched = (try? host.watch(fd: fd, events: .readable, token: token)) != nil
        } else {
            host.unwatch(fd: fd)
            reader.watched = false
        }
    }

    /// Reads one frame: true when one was queued for the guest, false when one was dropped, nil
    /// when there is nothing more to read now (empty fd, no section, fd error).
    private func readFrame(_ reader: Reader, _ view: NIC.ReceiveView) -> Bool? {
        let buffer = view.buffer
        let channelCount = view.channels.count
        // Frames land in the section chain of the channel they go to, which is known only after
        // reading: take the section unlinked, link it once the target is known.
        guard let section = nic.pool.withLock({ $0.take(after: nil, waiter: index) }) else {
            return nil
        }
        let base = Int(section) * buffer.sectionSize
        let dataStart = NIC.receiveDataStart
        let room = buffer.sectionSize - dataStart
        let v = reader.vectors, s = reader.scratch
        v.removeAll()
        v.append(s.base, VirtioNetHeader.size)
        guard v.append(buffer.map, offset: base + dataStart, length: room) else {
            release(section)
            return nil
        }
        let n = v.readv(fd)
        guard n > VirtioNetHeader.size else {
            release(section)
            if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK { nic.metrics.add(.rxMalformedDropped) }
            return n > 0 ? false : nil
        }
        var frameStart = base + dataStart
        var frameLength = n - VirtioNetHeader.size
        let vnet = VirtioNetHeader(s)
        let copy = min(frameLength, 128)
        let h = 16
        guard frameLength >= FrameHeaders.ethernetSize, vnet.gsoType == VirtioNetHeader.gsoNone,
              buffer.map.copyOut(offset: frameStart, into: UnsafeMutableRawBufferPointer(rebasing: s.bytes[h..<h + copy]))
        else {
            // A GSO frame cannot be handed to netvsc without RSC: the port must not enable
            // host-side TSO towards the guest.
            nic.metrics.add(.rxMalformedDropped)
            release(section)
            return false
        }
        guard accepts(destination: s, at: h, view: view) else {
            nic.metrics.add(.rxFilteredDropped)
            release(section)
            return false
        }
        var headers = FrameHeaders(s, at: h, length: copy)
        var vlan: PPIValue.VLAN?
        if headers.hasVLANTag {
            // The tag travels as a PPI: move the addresses over it.
            vlan = PPIValue.VLAN(tci: s.u16be(h + 14))
            guard buffer.map.shiftForward(offset: frameStart, length: 12, by: 4) else {
                release(section)
                return false
            }
            frameStart += 4
            frameLength -= 4
            headers.l3Offset -= 4
            headers.l4Offset -= 4
        }
        var checksum: UInt32?
        if vnet.flags & VirtioNetHeader.needsChecksum != 0 {
            // The host left the sum to be done: finish it in the guest's copy, then it is valid.
            let start = Int(vnet.checksumStart) - (vlan == nil ? 0 : 4)
            let field = start + Int(vnet.checksumOffset)
            guard start >= FrameHeaders.ethernetSize, field + 2 <= frameLength else {
                nic.metrics.add(.rxMalformedDropped)
                release(section)
                return false
            }
            let sum = buffer.map.onesComplementSum(offset: frameStart + start, length: frameLength - start)
            var folded = ~InternetChecksum.fold(sum)
            if folded == 0 && headers.l4Protocol == FrameHeaders.protocolUDP { folded = 0xFFFF }
            let bytes = [UInt8(folded >> 8), UInt8(truncatingIfNeeded: folded)]
            _ = bytes.withUnsafeBytes { buffer.map.copyIn(offset: frameStart + field, from: $0) }
            checksum = receiveChecksum(headers)
        } else if vnet.flags & VirtioNetHeader.dataValid != 0 {
            checksum = receiveChecksum(headers)
        }
        var hash: UInt32?
        var target = index % max(channelCount, 1)
        if view.rss.enabled {
            let count = headers.hashInput(s, at: h, length: copy, into: &reader.hashInput)
            if count > 0 {
                let value = Toeplitz.hash(key: view.rss.key, input: reader.hashInput, count: count)
                hash = value
                let queue = Int(view.rss.table[Int(value % UInt32(view.rss.table.count))])
                target = queue
            }
        }
        // A queue the guest named but has not opened (or never got) falls back to the primary.
        if target >= channelCount || view.channels[target] == nil { target = 0 }

        // The RNDIS prefix: header, packet message, PPIs; the data follows at its own offset.
        let p = 160
        var ppiCount = 0
        func ppi(_ type: PPIType, _ value: UInt32) {
            let at = p + RNDISPacketHeader.messagePrefix + ppiCount * PPIEntry.u32EntrySize
            s.setU32le(UInt32(PPIEntry.u32EntrySize), at: at)
            s.setU32le(type.rawValue, at: at + 4)
            s.setU32le(UInt32(PPIEntry.headerSize), at: at + 8)
            s.setU32le(value, at: at + 12)
            ppiCount += 1
        }
        if let checksum { ppi(.checksum, checksum) }
        if let vlan { ppi(.ieee8021Q, vlan.rawValue) }
        if let hash { ppi(.hashValue, hash) }
        let dataOffset = frameStart - base - RNDISHeader.size
        let total = frameStart - base + frameLength
        s.setU32le(RNDISMessageType.packet.rawValue, at: p)
        s.setU32le(UInt32(total), at: p + 4)
        let body = p + RNDISHeader.size
        s.setU32le(UInt32(dataOffset), at: body)
        s.setU32le(UInt32(frameLength), at: body + 4)
        for i in 2..<5 { s.setU32le(0, at: body + 4 * i) }
        s.setU32le(ppiCount == 0 ? 0 : UInt32(RNDISPacketHeader.size), at: body + 20)
        s.setU32le(UInt32(ppiCount * PPIEntry.u32EntrySize), at: body + 24)
        s.setU32le(0, at: body + 28)
        s.setU32le(0, at: body + 32)
        let prefixLength = RNDISPacketHeader.messagePrefix + ppiCount * PPIEntry.u32EntrySize
        buffer.map.copyIn(offset: base, from: UnsafeRawBufferPointer(rebasing: s.bytes[p..<p + prefixLength]))

        // Link the section into the target channel's chain.
        let linked = nic.pool.withLock { pool -> Bool in pool.link(section, after: reader.tails[target]) }
        guard linked else {
            release(section)
            return false
        }
        if reader.heads[target] == nil { reader.heads[target] = section }
        reader.tails[target] = section
        reader.ranges[target].append(TransferPageRange(byteCount: UInt32(total), byteOffset: UInt32(base)))
        nic.metrics.add(.rxFrames)
        nic.metrics.add(.rxBytes, UInt64(frameLength))
        return true
    }

    private func release(_ section: UInt32) {
        let waiters = nic.pool.withLock { $0.release(head: section).waiters }
        if waiters != 0 { wake(waiters) }
    }

    /// Queues that waited for sections read again (through posted work, on the event loop).
    private func wake(_ waiters: UInt64) {
        for i in 0..<64 where waiters & (1 << UInt64(i)) != 0 { host.postWork(token: ReceiveQueue.tokenBase | UInt64(i)) }
    }

    private func accepts(destination s: Scratch, at h: Int, view: NIC.ReceiveView) -> Bool {
        let filter = view.filter
        if filter & PacketFilter.promiscuous != 0 { return true }
        if s[h] & 1 != 0 {
            let broadcast = (0..<6).allSatisfy { s[h + $0] == 0xFF }
            if broadcast { return filter & PacketFilter.broadcast != 0 }
            return filter & (PacketFilter.allMulticast | PacketFilter.multicast) != 0
        }
        let own = view.mac.array
        return filter & PacketFilter.directed != 0 && (0..<6).allSatisfy { s[h + $0] == own[$0] }
    }

    private func receiveChecksum(_ headers: FrameHeaders) -> UInt32? {
        var bits: UInt32 = 0
        switch headers.network {
        case .ipv4: bits |= PPIValue.ReceiveChecksum.ipSucceeded
        case .ipv6: break
        case .other: return nil
        }
        if headers.l4Protocol == FrameHeaders.protocolTCP { bits |= PPIValue.ReceiveChecksum.tcpSucceeded }
        if headers.l4Protocol == FrameHeaders.protocolUDP { bits |= PPIValue.ReceiveChecksum.udpSucceeded }
        return bits
    }

    /// Sends each channel's frames as one transfer-page packet (several when over Linux's range
    /// limit would be needed: the budget keeps it under).
    private func flush(_ reader: Reader, _ view: NIC.ReceiveView) {
        for channel in 0..<reader.ranges.count where !reader.ranges[channel].isEmpty {
            guard let head = reader.heads[channel] else { continue }
            let count = reader.ranges[channel].count
            TransferPageHeader.encode(setID: view.buffer.setID, ranges: reader.ranges[channel][...], into: &reader.header)
            let id = nic.pool.withLock { $0.transactionID(head: head) }
            let packet = OutgoingPacket(type: 7, flags: 1, transactionID: id,
                                        header: Array(reader.header[0..<TransferPageHeader.size(ranges: count)]),
                                        payload: NVSPReply.rndisPacket(channelType: .data).encoded(size: view.version.messageSize))
            if !deliver(channel, packet) {
                nic.metrics.add(.rxRingFullDropped, UInt64(count))
                release(head)
            }
            reader.ranges[channel].removeAll(keepingCapacity: true)
            reader.heads[channel] = nil
            reader.tails[channel] = nil
        }
    }
}
