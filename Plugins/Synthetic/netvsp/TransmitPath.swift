import RNDISProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Guest to port: the RNDIS PACKET messages of one send, each checked against its message and the
/// send's bytes, turned into a virtio-net header (checksum and LSO offloads) and written with one
/// writev from guest memory. The frame's first bytes are copied (they are checked and may be
/// fixed up); the rest goes straight from the guest's buffer.
extension ChannelSession {
    /// Bounds of one frame: the MTU's, or an LSO send's.
    private var maxLSOFrame: Int { NICConfiguration.lsoMaxSize + 256 }

    func transmitAll() {
        var at = 0
        let prefix = RNDISHeader.size + RNDISPacketHeader.size
        while stream.count - at >= prefix {
            let message = UnsafeMutableRawBufferPointer(rebasing: scratch.bytes[Self.messageAt..<Self.messageAt + prefix])
            guard stream.copyOut(offset: at, into: message) else { break }
            let type = scratch.u32le(Self.messageAt), length = Int(scratch.u32le(Self.messageAt + 4))
            guard type == RNDISMessageType.packet.rawValue, length >= prefix, length <= stream.count - at else {
                // A zero header ends a batch padded with zeros; anything else is the guest's error.
                if type != 0 || length != 0 { nic.metrics.add(.badRNDIS) }
                return
            }
            defer { at += length }
            let body = Self.messageAt + RNDISHeader.size
            let dataOffset = Int(scratch.u32le(body)), dataLength = Int(scratch.u32le(body + 4))
            let ppiOffset = Int(scratch.u32le(body + 20)), ppiLength = Int(scratch.u32le(body + 24))
            let dataStart = RNDISHeader.size + dataOffset
            guard dataOffset >= RNDISPacketHeader.size, dataLength >= FrameHeaders.ethernetSize,
                  dataStart <= length, dataLength <= length - dataStart
            else {
                nic.metrics.add(.badRNDIS)
                continue
            }
            var checksum: UInt32?, largeSend: UInt32?, vlan: UInt32?
            if ppiLength > 0 {
                let ppiStart = RNDISHeader.size + ppiOffset
                guard ppiOffset >= RNDISPacketHeader.size, ppiLength <= ppi.count, ppiStart <= length, ppiLength <= length - ppiStart else {
                    nic.metrics.add(.badPPI)
                    continue
                }
                let copied = ppi.withUnsafeMutableBytes {
                    stream.copyOut(offset: at + ppiStart, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<ppiLength]))
                }
                let wellFormed = copied && PPIEntry.walk(ppi, offset: 0, length: ppiLength) { entry in
                    guard !entry.isInternal else { return }
                    switch PPIType(rawValue: entry.type) {
                    case .checksum?: checksum = entry.value
                    case .largeSend?: largeSend = entry.value
                    case .ieee8021Q?: vlan = entry.value
                    default: break
                    }
                }
                guard wellFormed else {
                    nic.metrics.add(.badPPI)
                    continue
                }
            }
            transmit(offset: at + dataStart, length: dataLength, checksum: checksum, largeSend: largeSend, vlan: vlan)
        }
    }

    private func transmit(offset: Int, length: Int, checksum: UInt32?, largeSend: UInt32?, vlan: UInt32?) {
        let config = nic.configuration
        guard length <= (largeSend != nil ? maxLSOFrame : config.maxFrame) else {
            nic.metrics.add(.badRNDIS)
            return
        }
        let h = Self.headerAt
        let copy = min(length, Self.headerCopy)
        guard stream.copyOut(offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: scratch.bytes[h..<h + copy])) else { return }
        let (mac, checksumOn, lsoOn) = nic.state.withLock { ($0.mac, $0.checksumOffload, $0.lsoOffload) }
        // Spoofing: the source address must be the NIC's own.
        if !config.allowMACSpoofing {
            let own = mac.array
            for i in 0..<6 where scratch[h + 6 + i] != own[i] {
                nic.metrics.add(.txSpoofDropped)
                return
            }
        }
        let headers = FrameHeaders(scratch, at: h, length: copy)
        // VLAN: an access port carries only untagged frames (the switch tags them); the guest
        // may name the port's own VLAN in a PPI, nothing else. Elsewhere the PPI becomes a tag.
        var insertTag: UInt16?
        if let raw = vlan {
            let tag = PPIValue.VLAN(rawValue: raw)
            if let access = config.vlan {
                guard tag.id == 0 || tag.id == access else {
                    nic.metrics.add(.txVLANDropped)
                    return
                }
            } else if tag.id != 0 || tag.priority != 0 {
                insertTag = tag.tci
            }
        }
        if headers.hasVLANTag && (config.vlan != nil || insertTag != nil) {
            nic.metrics.add(.txVLANDropped)
            return
        }
        let accepted = nic.bucket.withLock { bucket -> Bool in
            guard bucket != nil else { return true }
            return bucket?.take(bits: UInt64(length) * 8, now: host.now) ?? true
        }
        guard accepted else {
            nic.metrics.add(.txRateDropped)
            return
        }
        let shift = insertTag == nil ? 0 : 4
        var vnet = VirtioNetHeader()
        if let raw = largeSend, lsoOn {
            let lso = PPIValue.LargeSend(rawValue: raw)
            let headerEnd = headers.l4Offset + headers.tcpHeaderLength
            guard headers.l4Protocol == FrameHeaders.protocolTCP, headers.tcpHeaderLength > 0, headers.network != .other,
                  headerEnd <= copy, lso.mss > 0, lso.mss <= 0xFFFF
            else {
                nic.metrics.add(.badPPI)
                return
            }
            fixUpForSegmentation(headers, frameLength: length)
            vnet = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum,
                                   gsoType: headers.network == .ipv4 ? VirtioNetHeader.gsoTCPv4 : VirtioNetHeader.gsoTCPv6,
                                   headerLength: UInt16(headerEnd + shift), gsoSize: UInt16(lso.mss),
                                   checksumStart: UInt16(headers.l4Offset + shift), checksumOffset: 16)
        } else if let raw = checksum, checksumOn {
            let request = PPIValue.TransmitChecksum(rawValue: raw)
            if request.ipHeaderChecksum && headers.network == .ipv4 { fillIPv4HeaderChecksum(headers) }
            if request.tcpChecksum && headers.l4Protocol == FrameHeaders.protocolTCP && headers.network != .other {
                vnet = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: UInt16(headers.l4Offset + shift), checksumOffset: 16)
            } else if request.udpChecksum && headers.l4Protocol == FrameHeaders.protocolUDP && headers.network != .other {
                vnet = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: UInt16(headers.l4Offset + shift), checksumOffset: 6)
            }
        }
        vnet.write(to: scratch)
        vectors.removeAll()
        vectors.append(scratch.base, VirtioNetHeader.size)
        if let tci = insertTag {
            scratch.setU16be(FrameHeaders.etherTypeVLAN, at: 12)
            scratch.setU16be(tci, at: 14)
            vectors.append(scratch.base + h, 12)
            vectors.append(scratch.base + 12, 4)
            vectors.append(scratch.base + h + 12, copy - 12)
        } else {
            vectors.append(scratch.base + h, copy)
        }
        guard vectors.append(stream, offset: offset + copy, length: length - copy) else {
            nic.metrics.add(.badBuffer)
            return
        }
        let written = vectors.writev(nic.transmitFD(queue: queueIndex))
        guard written == vectors.totalBytes else {
            nic.metrics.add(.txQueueDropped)
            return
        }
        nic.metrics.add(.txFrames)
        nic.metrics.add(.txBytes, UInt64(length + shift))
    }

    /// An LSO send as netvsc writes it has the IP length zeroed and a TCP pseudo-header sum
    /// without the length; a GSO frame for the host kernel needs both as for the whole frame.
    private func fixUpForSegmentation(_ headers: FrameHeaders, frameLength: Int) {
        let h = Self.headerAt
        let l3 = h + headers.l3Offset
        let tcpLength = frameLength - headers.l4Offset
        switch headers.network {
        case .ipv4:
            scratch.setU16be(UInt16(clamping: frameLength - headers.l3Offset), at: l3 + 2)
            fillIPv4HeaderChecksum(headers)
        case .ipv6:
            scratch.setU16be(UInt16(clamping: frameLength - headers.l3Offset - 40), at: l3 + 4)
        case .other:
            return
        }
        let field = h + headers.l4Offset + 16
        let seeded = UInt64(scratch.u16be(field))
        scratch.setU16be(InternetChecksum.fold(seeded + UInt64(UInt16(clamping: tcpLength))), at: field)
    }

    private func fillIPv4HeaderChecksum(_ headers: FrameHeaders) {
        let l3 = Self.headerAt + headers.l3Offset
        let length = headers.l4Offset - headers.l3Offset
        scratch.setU16be(0, at: l3 + 10)
        scratch.setU16be(~InternetChecksum.fold(InternetChecksum.sum(scratch, at: l3, length: length)), at: l3 + 10)
    }
}
