import VeneerNet
import NVSPProtocol
import RNDISProtocol

/// Answers the guest's RNDIS control messages from the NIC's state: initialize, the OIDs Linux
/// and Windows query and set, reset, keepalive. Halt stops receive traffic and has no answer.
struct RNDISController {
    let nic: NIC
    /// Queues the guest may use (primary + sub-channels it may ask for).
    let queueLimit: Int

    static let maxPacketsPerMessage: UInt32 = 8
    /// 8-byte alignment of batched packets (1 << 3).
    static let alignmentShift: UInt32 = 3
    static let friendlyName = "Veneer Network Adapter"

    static let supportedOIDs: [UInt32] = [
        RNDISOID.supportedList, RNDISOID.hardwareStatus, RNDISOID.mediaSupported, RNDISOID.mediaInUse,
        RNDISOID.maximumLookahead, RNDISOID.maximumFrameSize, RNDISOID.linkSpeed, RNDISOID.transmitBlockSize,
        RNDISOID.receiveBlockSize, RNDISOID.vendorID, RNDISOID.vendorDescription, RNDISOID.currentPacketFilter,
        RNDISOID.currentLookahead, RNDISOID.maximumTotalSize, RNDISOID.macOptions, RNDISOID.mediaConnectStatus,
        RNDISOID.maximumSendPackets, RNDISOID.vendorDriverVersion, RNDISOID.physicalMedium, RNDISOID.friendlyName,
        RNDISOID.transmitOK, RNDISOID.receiveOK, RNDISOID.transmitError, RNDISOID.receiveError, RNDISOID.receiveNoBuffer,
        RNDISOID.permanentAddress, RNDISOID.currentAddress, RNDISOID.multicastList, RNDISOID.maximumMulticastListSize,
        RNDISOID.offloadHardwareCapabilities, RNDISOID.receiveScaleCapabilities,
    ]

    func handle(_ request: RNDISRequest) -> RNDISResponse? {
        switch request {
        case .initialize(let id, let major, _, _):
            let ok = major >= 1
            if ok { nic.state.withLock { $0.rndisInitialized = true } }
            return .initializeComplete(requestID: id, status: ok ? RNDISStatus.success : RNDISStatus.notSupported,
                                       maxPacketsPerMessage: Self.maxPacketsPerMessage, maxTransferSize: 0x0040_0000,
                                       alignmentShift: Self.alignmentShift)
        case .halt:
            nic.state.withLock { s in
                s.rndisInitialized = false
                s.packetFilter = 0
            }
            return nil
        case .query(let id, let oid, let information):
            if let answer = query(oid, information) {
                return .queryComplete(requestID: id, status: RNDISStatus.success, information: answer)
            }
            return .queryComplete(requestID: id, status: RNDISStatus.notSupported, information: [])
        case .set(let id, let oid, let information):
            return .setComplete(requestID: id, status: set(oid, information))
        case .reset:
            nic.state.withLock { $0.packetFilter = 0 }
            return .resetComplete(status: RNDISStatus.success)
        case .keepalive(let id):
            return .keepaliveComplete(requestID: id, status: RNDISStatus.success)
        }
    }

    private func u32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    private func u64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    private func query(_ oid: UInt32, _ information: [UInt8]) -> [UInt8]? {
        let config = nic.configuration
        let (mac, linkUp, filter, version) = nic.state.withLock { ($0.mac, $0.reportedLinkUp, $0.packetFilter, $0.version) }
        let m = nic.metrics
        switch oid {
        case RNDISOID.supportedList: return Self.supportedOIDs.flatMap(u32)
        case RNDISOID.hardwareStatus, RNDISOID.mediaSupported, RNDISOID.mediaInUse, RNDISOID.physicalMedium: return u32(0)
        case RNDISOID.maximumLookahead, RNDISOID.currentLookahead, RNDISOID.maximumFrameSize: return u32(UInt32(config.mtu))
        case RNDISOID.linkSpeed: return u32(UInt32(clamping: config.linkSpeedBitsPerSecond / 100))
        case RNDISOID.transmitBlockSize, RNDISOID.receiveBlockSize, RNDISOID.maximumTotalSize:
            return u32(UInt32(config.mtu + FrameHeaders.ethernetSize))
        case RNDISOID.vendorID: return u32(0x00_15_5D)
        case RNDISOID.vendorDescription: return Array(Self.friendlyName.utf8) + [0]
        case RNDISOID.vendorDriverVersion: return u32(0x0001_0000)
        case RNDISOID.currentPacketFilter: return u32(filter)
        case RNDISOID.macOptions: return u32(0)
        case RNDISOID.mediaConnectStatus: return u32(linkUp ? 0 : 1)
        case RNDISOID.maximumSendPackets: return u32(Self.maxPacketsPerMessage)
        case RNDISOID.friendlyName: return Self.friendlyName.utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)] } + [0, 0]
        case RNDISOID.transmitOK: return u64(m.value(.txFrames))
        case RNDISOID.receiveOK: return u64(m.value(.rxFrames))
        case RNDISOID.transmitError:
            return u64(m.value(.txQueueDropped) + m.value(.txSpoofDropped) + m.value(.txRateDropped) + m.value(.txVLANDropped))
        case RNDISOID.receiveError: return u64(m.value(.rxMalformedDropped))
        case RNDISOID.receiveNoBuffer: return u64(m.value(.rxRingFullDropped))
        case RNDISOID.permanentAddress, RNDISOID.currentAddress: return mac.array
        case RNDISOID.multicastList: return []
        case RNDISOID.maximumMulticastListSize: return u32(32)
        case RNDISOID.offloadHardwareCapabilities:
            // Answer in the revision asked (Linux: 3 at NVSP >= 5, 2 at 4, 1 before).
            let asked = NDISObjectHeader(information)?.revision ?? 1
            let rsc = false
            return NDISOffloadCapabilities(checksum: true, lsoMaxSize: UInt32(NICConfiguration.lsoMaxSize),
                                           lsoMinSegments: NICConfiguration.lsoMinSegments, rsc: rsc).encoded(revision: asked)
        case RNDISOID.receiveScaleCapabilities:
            // vRSS needs sub-channels (NVSP 5).
            guard let version, version >= .v5, queueLimit >= 2 else { return nil }
            return NDISReceiveScaleCapabilities(receiveQueues: UInt32(queueLimit)).encoded()
        default: return nil
        }
    }

    private func set(_ oid: UInt32, _ information: [UInt8]) -> UInt32 {
        switch oid {
        case RNDISOID.currentPacketFilter:
            guard information.count >= 4 else { return RNDISStatus.invalidLength }
            let filter = UInt32(information[0]) | UInt32(information[1]) << 8 | UInt32(information[2]) << 16 | UInt32(information[3]) << 24
            nic.state.withLock { $0.packetFilter = filter }
            return RNDISStatus.success
        case RNDISOID.offloadParameters:
            guard let params = NDISOffloadParameters(information) else { return RNDISStatus.invalidData }
            nic.state.withLock { s in
                // 1 turns an offload off; 0 leaves it; anything else turns it on.
                if params.tcp4Checksum == 1 && params.tcp6Checksum == 1 { s.checksumOffload = false } else if params.tcp4Checksum > 1 {
                    s.checksumOffload = true
                }
                if params.lsoV2IP4 == 1 && params.lsoV2IP6 == 1 { s.lsoOffload = false } else if params.lsoV2IP4 > 1 { s.lsoOffload = true }
            }
            return RNDISStatus.success
        case RNDISOID.receiveScaleParameters:
            let params: NDISReceiveScaleParameters
            do { params = try NDISReceiveScaleParameters.decode(information) } catch { return RNDISStatus.invalidData }
            nic.state.withLock { s in
                if params.disables {
                    s.rss.enabled = false
                    return
                }
                if !params.key.isEmpty { s.rss.key = params.key }
                if !params.table.isEmpty { s.rss.table = params.table }
                s.rss.enabled = s.rss.key.count >= 4 && !s.rss.table.isEmpty
            }
            return RNDISStatus.success
        case RNDISOID.multicastList:
            return information.count % 6 == 0 ? RNDISStatus.success : RNDISStatus.invalidLength
        case RNDISOID.rndisConfigParameter:
            // A MAC change ("NetworkAddress"): only where spoofing is allowed, as the port
            // would drop the new address's frames otherwise.
            return nic.configuration.allowMACSpoofing ? setNetworkAddress(information) : RNDISStatus.notSupported
        default:
            return RNDISStatus.notSupported
        }
    }

    /// RNDIS_CONFIG_PARAMETER_INFO {name offset, name length, type, value offset, value length}
    /// with a UTF-16 name "NetworkAddress" and a string value of 12 hex digits.
    private func setNetworkAddress(_ b: [UInt8]) -> UInt32 {
        func le(_ at: Int) -> Int { at + 4 <= b.count ? Int(UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24) : -1 }
        let nameOffset = le(0), nameLength = le(4), valueOffset = le(12), valueLength = le(16)
        guard nameOffset >= 0, nameLength >= 0, valueOffset >= 0, valueLength >= 0,
              nameOffset <= b.count, nameLength <= b.count - nameOffset, valueOffset <= b.count, valueLength <= b.count - valueOffset
        else { return RNDISStatus.invalidData }
        func utf16(_ at: Int, _ count: Int) -> String {
            let units = stride(from: at, to: at + count - 1, by: 2).map { UInt16(b[$0]) | UInt16(b[$0 + 1]) << 8 }
            return String(decoding: units, as: UTF16.self)
        }
        guard utf16(nameOffset, nameLength).lowercased() == "networkaddress" else { return RNDISStatus.notSupported }
        let hex = Array(utf16(valueOffset, valueLength).filter { $0 != "\0" && $0 != "-" && $0 != ":" })
        guard hex.count == 12 else { return RNDISStatus.invalidData }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: 12, by: 2) {
            guard let v = UInt8(String(hex[i...i + 1]), radix: 16) else { return RNDISStatus.invalidData }
            bytes.append(v)
        }
        nic.state.withLock { $0.mac = MACAddressBytes.make(bytes) }
        return RNDISStatus.success
    }
}



enum MACAddressBytes {
    /// `bytes` must hold 6 bytes (callers check).
    static func make(_ bytes: [UInt8]) -> MACAddress { MACAddress(bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]) }
}
