import ICProtocol
import VeneerPluginKit

/// Saving and loading an endpoint, inside its plugin's device state. Time is not saved: an
/// outstanding request gets its full timeout again from the moment it is loaded.
extension ICEndpoint {
    /// The longest request timeout a loaded state may carry (one hour).
    static let maximumTimeout: UInt64 = 3_600_000_000_000

    public func save(to state: inout StateWriter) {
        switch phase {
        case .closed: state.write(UInt8(0))
        case .negotiating: state.write(UInt8(1))
        case .ready(let framework, let message):
            state.write(UInt8(2))
            for v in [framework, message] {
                state.write(v.major)
                state.write(v.minor)
            }
        case .failed(let reason):
            state.write(UInt8(3))
            // At most 512 bytes, cut at a character boundary so that load accepts it again.
            var bytes = Array(reason.utf8.prefix(512))
            while !bytes.isEmpty && String(validating: bytes, as: UTF8.self) == nil { bytes.removeLast() }
            state.write(bytes: bytes)
        }
        state.write(outstanding != nil)
        if let r = outstanding {
            state.write(r.type.rawValue)
            state.write(r.packetID)
            state.write(r.transactionID)
            state.write(r.tag)
            state.write(r.timeout)
        }
        state.write(nextPacketID)
        state.write(negotiationReported)
        for field in counters.fields { state.write(field) }
    }

    /// Reads what `save` wrote, checking that it describes a state the endpoint can be in; the
    /// endpoint is changed only when everything is valid. Timers are not touched: call
    /// `resumeTimers` once the plugin has accepted its whole state (load into a copy first).
    public mutating func load(from state: inout StateReader) throws(StateError) {
        let phase: ICPhase
        switch try state.read(UInt8.self) {
        case 0: phase = .closed
        case 1: phase = .negotiating
        case 2:
            let framework = ICVersion(try state.read(), try state.read())
            let message = ICVersion(try state.read(), try state.read())
            guard profile.frameworkVersions.contains(framework), profile.messageVersions.contains(message) else {
                throw StateError("\(profile.name) IC state: negotiated versions \(framework)/\(message) were never offered")
            }
            phase = .ready(framework: framework, message: message)
        case 3:
            guard let reason = String(validating: try state.readBytes(maxCount: 512), as: UTF8.self) else {
                throw StateError("\(profile.name) IC state: failure reason is not UTF-8")
            }
            phase = .failed(reason)
        case let other:
            throw StateError("\(profile.name) IC state: unknown phase \(other)")
        }
        var outstanding: ICRequest?
        if try state.readBool() {
            outstanding = ICRequest(type: ICMessageType(rawValue: try state.read()), packetID: try state.read(),
                                    transactionID: try state.read(), tag: try state.read(), timeout: try state.read())
        }
        let next: UInt64 = try state.read()
        let reported = try state.readBool()
        var fields: [UInt64] = []
        for _ in 0..<ICCounters.fieldCount { fields.append(try state.read()) }

        guard next != 0 else { throw StateError("\(profile.name) IC state: next packet id 0") }
        if let r = outstanding {
            let expectedType: ICMessageType
            switch phase {
            case .negotiating: expectedType = .negotiate
            case .ready: expectedType = profile.messageType
            default: throw StateError("\(profile.name) IC state: a request outstanding while \(phase)")
            }
            guard r.type == expectedType else {
                throw StateError("\(profile.name) IC state: outstanding \(r.type) request while \(phase)")
            }
            guard r.packetID != 0, r.packetID < next, r.transactionID == UInt8(truncatingIfNeeded: r.packetID) else {
                throw StateError("\(profile.name) IC state: outstanding request id \(r.packetID)/\(r.transactionID) does not fit next id \(next)")
            }
            guard r.timeout > 0, r.timeout <= Self.maximumTimeout else {
                throw StateError("\(profile.name) IC state: request timeout \(r.timeout) ns out of range")
            }
        }
        guard !reported || outstanding?.type == .negotiate else {
            throw StateError("\(profile.name) IC state: negotiation timeout noted without a negotiate request")
        }

        self.phase = phase
        self.outstanding = outstanding
        nextPacketID = next
        negotiationReported = reported
        counters = ICCounters(fields: fields)
    }

    /// After a load: the timeout timer follows the loaded state (a full timeout for an
    /// outstanding request, none otherwise).
    public func resumeTimers() {
        host.cancelTimer(token: tokens.timeout)
        armTimeout()
    }
}
