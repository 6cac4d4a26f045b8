/// An RNDIS control message from the guest (channel type 1), decoded from its complete bytes
/// (header included). Fields are the guest's; `information` is already bounded to the message.
public enum RNDISRequest: Sendable, Equatable {
    case initialize(requestID: UInt32, major: UInt32, minor: UInt32, maxTransferSize: UInt32)
    case halt(requestID: UInt32)
    case query(requestID: UInt32, oid: UInt32, information: [UInt8])
    case set(requestID: UInt32, oid: UInt32, information: [UInt8])
    case reset
    case keepalive(requestID: UInt32)

    public enum DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
        case short(Int)
        case lengthMismatch(declared: UInt32, actual: Int)
        case informationOutOfBounds(offset: UInt32, length: UInt32, message: Int)
        case unknownType(UInt32)

        public var description: String {
            switch self {
            case .short(let n): "RNDIS control message of \(n) bytes is too short"
            case .lengthMismatch(let d, let a): "RNDIS message declares \(d) bytes but \(a) arrived"
            case .informationOutOfBounds(let o, let l, let m): "RNDIS information buffer [\(o), +\(l)) outside a \(m)-byte message"
            case .unknownType(let t): "RNDIS control message type 0x\(String(t, radix: 16)) unknown"
            }
        }
    }

    /// The largest control message accepted (OID set buffers are small; RSS params are ~600 bytes).
    public static let maxLength = 4096

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> RNDISRequest {
        guard let header = RNDISHeader(bytes), bytes.count >= 12 else { throw .short(bytes.count) }
        guard header.length >= 12, Int(header.length) <= bytes.count else {
            throw .lengthMismatch(declared: header.length, actual: bytes.count)
        }
        let length = Int(header.length)
        let requestID = bytes.le(UInt32.self, at: 8)
        func info() throws(DecodeError) -> (UInt32, [UInt8]) {
            // {req_id, oid, info_len, info_offset, vc}: info_offset counts from byte 8.
            guard length >= 28 else { throw .short(length) }
            let oid = bytes.le(UInt32.self, at: 12)
            let infoLength = bytes.le(UInt32.self, at: 16)
            let infoOffset = bytes.le(UInt32.self, at: 20)
            if infoLength == 0 { return (oid, []) }
            let start = 8 + Int(infoOffset)
            guard infoOffset >= 20, Int(infoLength) <= length - min(start, length), start < length else {
                throw .informationOutOfBounds(offset: infoOffset, length: infoLength, message: length)
            }
            return (oid, Array(bytes[start..<start + Int(infoLength)]))
        }
        switch RNDISMessageType(rawValue: header.type) {
        case .initialize?:
            guard length >= 24 else { throw .short(length) }
            return .initialize(requestID: requestID, major: bytes.le(UInt32.self, at: 12), minor: bytes.le(UInt32.self, at: 16),
                               maxTransferSize: bytes.le(UInt32.self, at: 20))
        case .halt?: return .halt(requestID: requestID)
        case .query?:
            let (oid, information) = try info()
            return .query(requestID: requestID, oid: oid, information: information)
        case .set?:
            let (oid, information) = try info()
            return .set(requestID: requestID, oid: oid, information: information)
        case .reset?: return .reset
        case .keepalive?: return .keepalive(requestID: requestID)
        default: throw .unknownType(header.type)
        }
    }

    /// The encoding a guest sends (tests, fuzz seeds). Query and set carry their information
    /// buffer at offset 20 (right after the 28-byte fixed part).
    public func encoded() -> [UInt8] {
        func message(_ type: RNDISMessageType, _ words: [UInt32], tail: [UInt8] = []) -> [UInt8] {
            var b = [UInt8](repeating: 0, count: 8 + 4 * words.count)
            b.putLE(type.rawValue, at: 0)
            b.putLE(UInt32(b.count + tail.count), at: 4)
            for (i, w) in words.enumerated() { b.putLE(w, at: 8 + 4 * i) }
            return b + tail
        }
        switch self {
        case .initialize(let id, let major, let minor, let max): return message(.initialize, [id, major, minor, max])
        case .halt(let id): return message(.halt, [id])
        case .query(let id, let oid, let info): return message(.query, [id, oid, UInt32(info.count), 20, 0], tail: info)
        case .set(let id, let oid, let info): return message(.set, [id, oid, UInt32(info.count), 20, 0], tail: info)
        case .reset: return message(.reset, [0])
        case .keepalive(let id): return message(.keepalive, [id])
        }
    }
}

/// What the VSP answers a control message with (and unsolicited status indications).
public enum RNDISResponse: Sendable, Equatable {
    case initializeComplete(requestID: UInt32, status: UInt32, maxPacketsPerMessage: UInt32, maxTransferSize: UInt32,
                            alignmentShift: UInt32)
    case queryComplete(requestID: UInt32, status: UInt32, information: [UInt8])
    case setComplete(requestID: UInt32, status: UInt32)
    case resetComplete(status: UInt32)
    case keepaliveComplete(requestID: UInt32, status: UInt32)
    case indicateStatus(status: UInt32, buffer: [UInt8])

    /// Offset of the information buffer in a query completion, counted from byte 8 (Linux
    /// requires at least 16).
    public static let queryInformationOffset: UInt32 = 16
    public static let initializeCompleteSize = 52

    public func encoded() -> [UInt8] {
        func message(_ type: RNDISMessageType, _ words: [UInt32], tail: [UInt8] = []) -> [UInt8] {
            var b = [UInt8](repeating: 0, count: 8 + 4 * words.count)
            b.putLE(type.rawValue, at: 0)
            b.putLE(UInt32(b.count + tail.count), at: 4)
            for (i, w) in words.enumerated() { b.putLE(w, at: 8 + 4 * i) }
            return b + tail
        }
        switch self {
        case .initializeComplete(let id, let status, let maxPackets, let maxTransfer, let shift):
            // {req_id, status, major 1, minor 0, flags (connectionless), medium 802.3,
            //  max packets per message, max transfer, alignment shift, af offset, af size}
            return message(.initializeComplete, [id, status, 1, 0, 1, 0, maxPackets, maxTransfer, shift, 0, 0])
        case .queryComplete(let id, let status, let info):
            return message(.queryComplete, [id, status, UInt32(info.count), info.isEmpty ? 0 : Self.queryInformationOffset], tail: info)
        case .setComplete(let id, let status): return message(.setComplete, [id, status])
        case .resetComplete(let status): return message(.resetComplete, [status, 0])
        case .keepaliveComplete(let id, let status): return message(.keepaliveComplete, [id, status])
        case .indicateStatus(let status, let buffer):
            return message(.indicateStatus, [status, UInt32(buffer.count), buffer.isEmpty ? 0 : 12], tail: buffer)
        }
    }
}
