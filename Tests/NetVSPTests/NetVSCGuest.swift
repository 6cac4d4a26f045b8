import Foundation
import NVSPProtocol
import RNDISProtocol
import Testing
import VeneerHarness
import VeneerHost

/// A port's other end: a SOCK_SEQPACKET socketpair, one end given to the plugin as a queue fd,
/// the other read and written by the test (frames with a 12-byte virtio-net header).
final class PortEnd {
    let pluginFD: Int32
    let testFD: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &fds) == 0 else { throw NetTestError("socketpair: errno \(errno)") }
        pluginFD = fds[0]
        testFD = fds[1]
        let flags = fcntl(testFD, F_GETFL)
        _ = fcntl(testFD, F_SETFL, flags | O_NONBLOCK)
    }

    deinit {
        close(pluginFD)
        close(testFD)
    }

    func inject(_ frame: [UInt8], header: [UInt8] = [UInt8](repeating: 0, count: 12)) {
        let bytes = header + frame
        _ = bytes.withUnsafeBytes { send(testFD, $0.baseAddress, $0.count, 0) }
    }

    /// Every frame the plugin wrote so far: (virtio-net header, frame).
    func frames() -> [(header: [UInt8], frame: [UInt8])] {
        var result: [([UInt8], [UInt8])] = []
        var buffer = [UInt8](repeating: 0, count: 70000)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(testFD, $0.baseAddress, $0.count, 0) }
            guard n >= 12 else { break }
            result.append((Array(buffer[0..<12]), Array(buffer[12..<n])))
        }
        return result
    }
}

struct NetTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func le32(_ b: [UInt8], _ at: Int) -> UInt32 {
    UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
}

func bytesLE32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

/// One RNDIS message a guest found in a transfer-page packet.
struct ReceivedMessage {
    var channel: UInt32
    var bytes: [UInt8]
    var type: UInt32 { le32(bytes, 0) }
    /// A data packet's frame and PPIs (type → value).
    var frame: [UInt8] {
        let offset = 8 + Int(le32(bytes, 8)), length = Int(le32(bytes, 12))
        return Array(bytes[offset..<offset + length])
    }
    var ppis: [UInt32: UInt32] {
        var result: [UInt32: UInt32] = [:]
        let offset = 8 + Int(le32(bytes, 28)), length = Int(le32(bytes, 32))
        _ = PPIEntry.walk(bytes, offset: offset, length: length) { result[$0.type] = $0.value }
        return result
    }
}

/// The test playing Linux's netvsc against the plugin in a harness: the exact init sequence of
/// `netvsc_connect_vsp` and `rndis_filter_device_add`, then frames both ways.
final class NetVSCGuest {
    static let receiveGPA: UInt64 = 0x40_0000
    static let receiveSize = 1 << 20
    static let sendGPA: UInt64 = 0x60_0000
    static let sendSize = 256 << 10
    static let receiveGPADL: UInt32 = 0xE1
    static let sendGPADL: UInt32 = 0xE2
    static let receiveSetID: UInt16 = 0xCAFE

    let h: PluginHarness
    let ports: [PortEnd]
    let primary: UInt32
    var version = NVSPVersion.v61
    var sectionSize = 0
    var sectionCount = 0
    var subchannels: [UInt32] = []
    private var consumed: [UInt32: Int] = [:]
    private var nextID: UInt64 = 0x1000
    private var requestID: UInt32 = 1

    init(parameters: [String: ParameterValidation.Input] = [:], queues: Int = 1, vcpus: UInt32 = 4, vmName: String = "vm1") throws {
        let ports = try (0..<queues).map { _ in try PortEnd() }
        var parameters = parameters
        parameters["fds"] = .string(ports.map { String($0.pluginFD) }.joined(separator: ","))
        h = try PluginHarness(plugin: "netvsp", parameters: parameters, ramBytes: 32 << 20, vcpuCount: vcpus)
        h.host.machineFacts = MachineFacts(vcpuCount: vcpus, ramBytes: 32 << 20, memoryMap: [], vmName: vmName)
        self.ports = ports
        primary = try #require(h.host.offers.keys.first)
    }

    var messageSize: Int { version.messageSize }

    /// Packets the device wrote on `channel` since the last call (besides completions `nvsp`
    /// already took).
    func newPackets(_ channel: UInt32) -> [FakeHost.Packet] {
        let all = h.host.packetsFromDevice(channel: channel)
        let start = consumed[channel] ?? 0
        consumed[channel] = all.count
        let fresh = (backlog.removeValue(forKey: channel) ?? []) + Array(all[min(start, all.count)...])
        return fresh
    }

    private var backlog: [UInt32: [FakeHost.Packet]] = [:]

    /// The completion of transaction `tid`, leaving the device's other packets for `newPackets`.
    private func takeCompletion(_ channel: UInt32, _ tid: UInt64) -> FakeHost.Packet? {
        var packets = newPackets(channel)
        let index = packets.firstIndex { $0.type == 11 && $0.transactionID == tid }
        let found = index.map { packets.remove(at: $0) }
        backlog[channel] = packets
        return found
    }

    func id() -> UInt64 {
        nextID += 1
        return nextID
    }

    /// Sends an NVSP message (in-band, completion requested unless told) and returns the
    /// completion's payload, if one came.
    @discardableResult
    func nvsp(_ message: NVSPMessage, channel: UInt32? = nil, completion: Bool = true) -> [UInt8]? {
        let channel = channel ?? primary
        let tid = id()
        h.send([FakeHost.Packet(flags: completion ? 1 : 0, transactionID: tid, payload: message.encoded())], channel: channel)
        return takeCompletion(channel, tid)?.payload
    }

    // MARK: Linux's sequence

    func connect(versions: [NVSPVersion] = [.v61, .v6, .v5, .v4, .v2]) throws {
        h.openChannel(primary)
        var agreed: NVSPVersion?
        for v in versions {
            let reply = try #require(nvsp(.initialize(minimum: v.rawValue, maximum: v.rawValue)))
            #expect(reply.count >= 28, "INIT_COMPLETE of \(reply.count) bytes")
            #expect(le32(reply, 0) == 2)
            if le32(reply, 12) == 1 {
                agreed = v
                break
            }
        }
        version = try #require(agreed)
        if version >= .v2 {
            var caps = NVSPMessage.Capability.ieee8021q
            if version >= .v5 { caps |= NVSPMessage.Capability.sriov | NVSPMessage.Capability.teaming }
            if version >= .v61 { caps |= NVSPMessage.Capability.rsc }
            #expect(nvsp(.ndisConfig(mtu: 1514, capabilities: caps), completion: false) == nil)
        }
        let ndis = version <= .v4 ? NDISVersion.v6_1 : NDISVersion.v6_30
        nvsp(.ndisVersion(major: ndis >> 16, minor: ndis & 0xFFFF), completion: false)

        #expect(h.defineGPADL(Self.receiveGPADL, channel: primary,
                              ranges: [PluginHarness.guestRange(gpa: Self.receiveGPA, length: Self.receiveSize)]))
        let recv = try #require(nvsp(.sendReceiveBuffer(gpadl: Self.receiveGPADL, id: Self.receiveSetID)))
        #expect(recv.count >= 28 && le32(recv, 0) == 102 && le32(recv, 4) == 1 && le32(recv, 8) == 1 && le32(recv, 12) == 0)
        sectionSize = Int(le32(recv, 16))
        sectionCount = Int(le32(recv, 20))
        #expect(sectionSize >= 68 && sectionSize * sectionCount <= Self.receiveSize && le32(recv, 24) == UInt32(sectionSize * sectionCount))

        #expect(h.defineGPADL(Self.sendGPADL, channel: primary, ranges: [PluginHarness.guestRange(gpa: Self.sendGPA, length: Self.sendSize)]))
        let send = try #require(nvsp(.sendSendBuffer(gpadl: Self.sendGPADL, id: 0)))
        #expect(send.count >= 28 && le32(send, 0) == 105 && le32(send, 4) == 1 && le32(send, 8) >= 68)
    }

    /// RNDIS initialize and the OID traffic of `rndis_filter_device_add`, then the packet filter.
    /// Returns the RSS capabilities' queue count (0 when not offered).
    @discardableResult
    func rndisSetUp(filter: UInt32 = 0x0D) throws -> Int {
        let initialized = try control(.initialize(requestID: nextRequest(), major: 1, minor: 0, maxTransferSize: 0x4000))
        #expect(initialized.count == 52 && le32(initialized, 0) == 0x8000_0002 && le32(initialized, 12) == 0)
        #expect(le32(initialized, 32) == 8 && le32(initialized, 40) == 3, "8 packets per message, 8-byte alignment")
        let frameSize = try query(RNDISOID.maximumFrameSize)
        #expect(frameSize.status == 0 && le32(frameSize.info, 0) >= 1500)
        let mac = try query(RNDISOID.permanentAddress)
        #expect(mac.status == 0 && mac.info.count == 6)
        _ = try query(RNDISOID.friendlyName)
        let revision: UInt8 = version >= .v5 ? 3 : version >= .v4 ? 2 : 1
        let size = NDISOffloadCapabilities.size(revision: revision)
        var ask = [UInt8](repeating: 0, count: size)
        ask[0] = NDISObjectHeader.typeOffload; ask[1] = revision; ask[2] = UInt8(size & 0xFF); ask[3] = UInt8(size >> 8)
        let caps = try query(RNDISOID.offloadHardwareCapabilities, ask)
        #expect(caps.status == 0 && caps.info[0] == 0xA7 && caps.info[1] >= 1)
        let capsSize = Int(caps.info[2]) | Int(caps.info[3]) << 8
        #expect(capsSize >= 112 && capsSize <= size && caps.info.count == capsSize)
        #expect(le32(caps.info, 8) & 0x14 == 0x14 && le32(caps.info, 80) & 2 == 2, "TCP checksum and LSO v2 over 802.3")
        let params = NDISOffloadParameters(tcp4Checksum: 4, udp4Checksum: 4, tcp6Checksum: 4, udp6Checksum: 4, lsoV2IP4: 2, lsoV2IP6: 2)
        #expect(try set(RNDISOID.offloadParameters, params.encoded()) == 0)
        let media = try query(RNDISOID.mediaConnectStatus)
        #expect(media.status == 0 && le32(media.info, 0) == 0)
        var queues = 0
        if version >= .v5 {
            let speed = try query(RNDISOID.linkSpeed)
            #expect(speed.status == 0 && le32(speed.info, 0) > 0)
            let rss = try query(RNDISOID.receiveScaleCapabilities)
            if rss.status == 0 {
                #expect(rss.info.count == 18 && rss.info[0] == 0x88)
                queues = Int(le32(rss.info, 12))
            }
        }
        if filter != 0 { #expect(try set(RNDISOID.currentPacketFilter, bytesLE32(filter)) == 0) }
        return queues
    }

    /// Asks for `count` sub-channels, opens every one offered, as `netvsc_sc_open` does.
    func openSubchannels(_ count: Int) throws -> Int {
        let reply = try #require(nvsp(.subchannel(operation: 1, count: UInt32(count))))
        #expect(le32(reply, 0) == 133 && le32(reply, 4) == 1)
        let granted = Int(le32(reply, 8))
        #expect(granted <= count)
        let subs = h.host.subchannels(of: primary)
        #expect(subs.count == granted && subs.map(\.index) == (1...max(granted, 1)).prefix(granted).map { UInt16($0) })
        subchannels = subs.map(\.channel)
        for sub in subchannels { h.openChannel(sub) }
        return granted
    }

    func nextRequest() -> UInt32 {
        requestID += 1
        return requestID
    }

    // MARK: RNDIS control

    /// Sends one control message through send section 0 and returns the answer from the
    /// receive buffer (completing its transfer-page packet).
    func control(_ request: RNDISRequest) throws -> [UInt8] {
        let bytes = request.encoded()
        try h.writeGuest(bytes, at: Self.sendGPA)
        let done = try #require(nvsp(.rndisPacket(channelType: 1, sectionIndex: 0, sectionSize: UInt32(bytes.count))))
        #expect(le32(done, 0) == 108 && le32(done, 4) == 1)
        let answers = try receive(channel: primary)
        #expect(answers.count == 1)
        return try #require(answers.first).bytes
    }

    func query(_ oid: UInt32, _ info: [UInt8] = []) throws -> (status: UInt32, info: [UInt8]) {
        let id = nextRequest()
        let r = try control(.query(requestID: id, oid: oid, information: info))
        #expect(le32(r, 0) == 0x8000_0004 && le32(r, 8) == id)
        let length = Int(le32(r, 16)), offset = Int(le32(r, 20))
        if length > 0 { #expect(offset >= 16) }
        return (le32(r, 12), length == 0 ? [] : Array(r[8 + offset..<8 + offset + length]))
    }

    func set(_ oid: UInt32, _ info: [UInt8]) throws -> UInt32 {
        let id = nextRequest()
        let r = try control(.set(requestID: id, oid: oid, information: info))
        #expect(le32(r, 0) == 0x8000_0005 && le32(r, 8) == id)
        return le32(r, 12)
    }

    // MARK: Frames

    /// The RNDIS messages of every transfer-page packet the device sent on `channel` since the
    /// last look, each packet completed afterwards (unless told not to).
    func receive(channel: UInt32, complete: Bool = true) throws -> [ReceivedMessage] {
        var result: [ReceivedMessage] = []
        for packet in newPackets(channel) where packet.type == 7 {
            let (setID, ranges) = try #require(TransferPageHeader.decode(packet.header))
            #expect(setID == Self.receiveSetID)
            #expect(le32(packet.payload, 0) == 107 && le32(packet.payload, 8) == 0xFFFF_FFFF)
            for range in ranges {
                #expect(Int(range.byteOffset) + Int(range.byteCount) <= Self.receiveSize)
                let bytes = try h.readGuest(Self.receiveGPA + UInt64(range.byteOffset), count: Int(range.byteCount))
                #expect(Int(le32(bytes, 4)) == bytes.count)
                result.append(ReceivedMessage(channel: channel, bytes: bytes))
            }
            if complete {
                h.send([FakeHost.Packet(type: 11, transactionID: packet.transactionID,
                                        payload: NVSPMessage.rndisPacketComplete(status: 1).encoded(size: messageSize))], channel: channel)
            }
        }
        return result
    }

    /// Lets the plugin read what the port has for it (fd events and posted work).
    func pump() {
        h.runPostedWork()
        for _ in 0..<8 {
            let n = h.pollFDs(timeoutMilliseconds: 0)
            h.runPostedWork()
            if n == 0 { break }
        }
    }

    /// An RNDIS PACKET message for `frame` with `ppis` (type, value), padded to 8 bytes.
    static func packetMessage(_ frame: [UInt8], ppis: [(PPIType, UInt32)] = []) -> [UInt8] {
        let ppiLength = ppis.count * 16
        let dataOffset = 36 + ppiLength
        let total = (8 + dataOffset + frame.count + 7) & ~7
        var b = [UInt8](repeating: 0, count: total)
        RNDISPacketHeader(dataOffset: UInt32(dataOffset), dataLength: UInt32(frame.count), ppiOffset: ppis.isEmpty ? 0 : 36,
                          ppiLength: UInt32(ppiLength)).encodeMessage(totalLength: UInt32(total), into: &b)
        for (i, p) in ppis.enumerated() { PPIEntry(type: p.0.rawValue, value: p.1).encode(into: &b, at: 44 + 16 * i) }
        for (i, x) in frame.enumerated() { b[8 + dataOffset + i] = x }
        return b
    }

    /// Sends RNDIS data messages through send section `section` (the copied shape); returns the
    /// completion's status.
    @discardableResult
    func sendFrames(_ messages: [[UInt8]], channel: UInt32? = nil, section: UInt32 = 1) throws -> UInt32? {
        let bytes = messages.flatMap { $0 }
        try h.writeGuest(bytes, at: Self.sendGPA + UInt64(section) * 6144)
        return nvsp(.rndisPacket(channelType: 0, sectionIndex: section, sectionSize: UInt32(bytes.count)), channel: channel).map { le32($0, 4) }
    }

    /// Sends one RNDIS data message through a GPA-direct page buffer at `gpa` (the page-buffer shape).
    @discardableResult
    func sendFrameGPADirect(_ message: [UInt8], gpa: UInt64 = 0x70_0000, channel: UInt32? = nil) throws -> UInt32? {
        let channel = channel ?? primary
        try h.writeGuest(message, at: gpa)
        let tid = id()
        h.send([PluginHarness.gpaDirectPacket(transactionID: tid, ranges: [PluginHarness.guestRange(gpa: gpa, length: message.count)],
                                              payload: NVSPMessage.rndisPacket(channelType: 0, sectionIndex: 0xFFFF_FFFF, sectionSize: 0).encoded())],
               channel: channel)
        return takeCompletion(channel, tid).map { le32($0.payload, 4) }
    }

    /// A management request as veneerd sends it; the device's answer.
    func controlOp(_ json: String) throws -> ControlRequestTable.Answer {
        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var answer: ControlRequestTable.Answer?
        }
        let box = Box()
        let id = h.host.controlRequests.begin(deadline: .max) { answer in box.lock.withLock { box.answer = answer } }
        #expect(h.device.control(request: id, json: json))
        return try #require(box.lock.withLock { box.answer })
    }

    func status() throws -> [String: Any] {
        let reply = try controlOp(#"{"op":"status"}"#)
        return try #require(JSONSerialization.jsonObject(with: Data(reply.text.utf8)) as? [String: Any])
    }

    func counter(_ key: String) throws -> Int {
        let counters = try #require(try status()["counters"] as? [String: Any])
        return try #require(counters[key] as? Int)
    }
}

/// Ethernet/IP frames for the tests, with valid checksums unless asked otherwise.
enum Frames {
    static func mac(_ s: String) -> [UInt8] { s.split(separator: ":").map { UInt8($0, radix: 16) ?? 0 } }

    static func sum(_ bytes: [UInt8]) -> UInt32 {
        var s: UInt32 = 0
        var i = 0
        while i + 1 < bytes.count {
            s += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { s += UInt32(bytes[i]) << 8 }
        return s
    }

    static func fold(_ s: UInt32) -> UInt16 {
        var s = s
        while s >> 16 != 0 { s = (s & 0xFFFF) + (s >> 16) }
        return UInt16(s)
    }

    /// IPv4 + TCP or UDP. `l4Checksum`: "full" (valid), "partial" (pseudo-header only, as a
    /// sender offloading the checksum leaves it), "lso" (pseudo-header without the length).
    static func ipv4(src: [UInt8], dst: [UInt8], tcp: Bool, payload: Int, l4Checksum: String = "full", srcPort: UInt16 = 1234,
                     dstPort: UInt16 = 80, srcIP: [UInt8] = [10, 0, 0, 1], dstIP: [UInt8] = [10, 0, 0, 2], zeroIPLength: Bool = false) -> [UInt8] {
        let l4Header = tcp ? 20 : 8
        let l4Length = l4Header + payload
        var ip: [UInt8] = [0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, tcp ? 6 : 17, 0, 0] + srcIP + dstIP
        let total = zeroIPLength ? 0 : 20 + l4Length
        ip[2] = UInt8(total >> 8); ip[3] = UInt8(total & 0xFF)
        let ipSum = ~fold(sum(ip))
        ip[10] = UInt8(ipSum >> 8); ip[11] = UInt8(ipSum & 0xFF)
        var l4: [UInt8]
        if tcp {
            l4 = [UInt8(srcPort >> 8), UInt8(srcPort & 0xFF), UInt8(dstPort >> 8), UInt8(dstPort & 0xFF), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
        } else {
            l4 = [UInt8(srcPort >> 8), UInt8(srcPort & 0xFF), UInt8(dstPort >> 8), UInt8(dstPort & 0xFF), UInt8(l4Length >> 8), UInt8(l4Length & 0xFF), 0, 0]
        }
        l4 += (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let pseudoWithLength = sum(srcIP + dstIP + [0, tcp ? 6 : 17, UInt8(l4Length >> 8), UInt8(l4Length & 0xFF)])
        let pseudoNoLength = sum(srcIP + dstIP + [0, tcp ? 6 : 17, 0, 0])
        let field = tcp ? 16 : 6
        let value: UInt16
        switch l4Checksum {
        case "partial": value = fold(pseudoWithLength)
        case "lso": value = fold(pseudoNoLength)
        default: value = ~fold(pseudoWithLength + sum(l4))
        }
        l4[field] = UInt8(value >> 8); l4[field + 1] = UInt8(value & 0xFF)
        return dst + src + [0x08, 0x00] + ip + l4
    }

    /// Whether the frame's IPv4 header and TCP/UDP checksums are valid.
    static func checksumsValid(_ frame: [UInt8]) -> Bool {
        var at = 12
        if frame[12] == 0x81 && frame[13] == 0 { at += 4 }
        let ip = at + 2
        let ihl = Int(frame[ip] & 0xF) * 4
        guard fold(sum(Array(frame[ip..<ip + ihl]))) == 0xFFFF else { return false }
        let proto = frame[ip + 9]
        let l4 = Array(frame[(ip + ihl)...])
        let pseudo = sum(Array(frame[ip + 12..<ip + 20]) + [0, proto, UInt8(l4.count >> 8), UInt8(l4.count & 0xFF)])
        return fold(pseudo + sum(l4)) == 0xFFFF
    }
}
