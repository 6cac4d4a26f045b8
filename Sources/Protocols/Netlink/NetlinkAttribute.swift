/// One netlink attribute (struct nlattr: u16 length including the 4-byte header, u16 type,
/// payload, padding to 4), possibly holding nested attributes.
public enum NetlinkAttribute: Sendable, Equatable {
    case bytes(type: UInt16, [UInt8])
    case nested(type: UInt16, [NetlinkAttribute])

    public static func string(_ type: UInt16, _ value: String) -> NetlinkAttribute {
        .bytes(type: type, Array(value.utf8) + [0])
    }
    public static func u8(_ type: UInt16, _ value: UInt8) -> NetlinkAttribute { .bytes(type: type, [value]) }
    public static func u16(_ type: UInt16, _ value: UInt16) -> NetlinkAttribute {
        var b: [UInt8] = []; b.appendHost(value); return .bytes(type: type, b)
    }
    public static func u32(_ type: UInt16, _ value: UInt32) -> NetlinkAttribute {
        var b: [UInt8] = []; b.appendHost(value); return .bytes(type: type, b)
    }

    public func encode(into out: inout [UInt8]) {
        let start = out.count
        out.appendHost(UInt16(0))  // length, patched below
        switch self {
        case .bytes(let type, let payload):
            out.appendHost(type)
            out.append(contentsOf: payload)
        case .nested(let type, let children):
            out.appendHost(type)
            for child in children { child.encode(into: &out) }
        }
        let length = UInt16(truncatingIfNeeded: out.count - start)
        out[start] = UInt8(truncatingIfNeeded: length)
        out[start + 1] = UInt8(truncatingIfNeeded: length >> 8)
        out.padToAlignment()
    }
}

public struct NetlinkDecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Attributes read from a message: each type with its payload (unpadded). Lengths are checked
/// against the enclosing buffer; a short or overlong attribute is an error, never a crash.
public struct NetlinkAttributes: Sendable {
    public private(set) var entries: [(type: UInt16, payload: [UInt8])] = []

    public init(parsing bytes: ArraySlice<UInt8>, context: String) throws(NetlinkDecodeError) {
        var offset = 0
        let all = Array(bytes)
        while offset + 4 <= all.count {
            guard let length = all.readHost(UInt16.self, at: offset), let rawType = all.readHost(UInt16.self, at: offset + 2) else { break }
            let len = Int(length)
            guard len >= 4, offset + len <= all.count else {
                throw NetlinkDecodeError("\(context): attribute at offset \(offset) has length \(len), \(all.count - offset) bytes remain")
            }
            entries.append((type: rawType & Netlink.attributeTypeMask, payload: Array(all[(offset + 4)..<(offset + len)])))
            offset += Netlink.aligned(len)
        }
    }

    public func first(_ type: UInt16) -> [UInt8]? { entries.first { $0.type == type }?.payload }
    public func all(_ type: UInt16) -> [[UInt8]] { entries.filter { $0.type == type }.map(\.payload) }

    /// A NUL-terminated (or unterminated) string attribute.
    public func string(_ type: UInt16) -> String? {
        guard let payload = first(type) else { return nil }
        let text = payload.prefix { $0 != 0 }
        return String(decoding: text, as: UTF8.self)
    }
    public func u8(_ type: UInt16) -> UInt8? { first(type)?.readHost(UInt8.self, at: 0) }
    public func u32(_ type: UInt16) -> UInt32? { first(type)?.readHost(UInt32.self, at: 0) }

    public func nested(_ type: UInt16, context: String) throws(NetlinkDecodeError) -> NetlinkAttributes? {
        guard let payload = first(type) else { return nil }
        return try NetlinkAttributes(parsing: payload[...], context: context)
    }
}
