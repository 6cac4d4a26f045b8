/// One IC message as it travels in a VMBus in-band packet: pipe header, IC header, body.
///
/// The body is everything after the 28 header bytes (Linux `ICMSG_HDR`). `icmsgsize` may be
/// smaller than that: a guest answers in the buffer the host sent, so the reply is the request's
/// full length (plus the ring's padding to 8 bytes) even when its own content is shorter, e.g.
/// Linux's negotiate reply says 16 bytes in a longer packet. It may never claim more than is there.
public struct ICFrame: Hashable, Sendable {
    /// Pipe header and IC header together: Linux `ICMSG_HDR`.
    public static let headerSize = PipeHeader.size + ICMessageHeader.size
    /// The largest IC message a host sends or accepts: OpenVMM's limit for IC channels.
    public static let maximumSize = 13_312

    public var pipe: PipeHeader
    public var header: ICMessageHeader
    public var body: [UInt8]

    public init(pipe: PipeHeader, header: ICMessageHeader, body: [UInt8]) {
        self.pipe = pipe
        self.header = header
        self.body = body
    }

    /// A host request: data pipe header sized to fit, TRANSACTION|REQUEST, `icmsgsize` = body length.
    public static func request(type: ICMessageType, transactionID: UInt8, frameworkVersion: ICVersion = .zero,
                               messageVersion: ICVersion = .zero, body: [UInt8]) -> ICFrame {
        ICFrame(
            pipe: PipeHeader(messageSize: UInt32(ICMessageHeader.size + body.count)),
            header: ICMessageHeader(frameworkVersion: frameworkVersion, messageType: type, messageVersion: messageVersion,
                                    messageSize: UInt16(clamping: body.count), transactionID: transactionID),
            body: body)
    }

    /// The bytes of `icmsgsize` (the part of the body its sender vouches for).
    public var declaredBody: ArraySlice<UInt8> { body.prefix(Int(header.messageSize)) }

    public static func decode(_ bytes: [UInt8]) throws(ICWireError) -> ICFrame {
        guard bytes.count <= maximumSize else {
            throw .invalidField(structure: "IC message", field: "length", value: UInt64(bytes.count))
        }
        var r = ICByteReader(bytes, structure: "IC message header")
        try r.require(headerSize)
        let pipe = try PipeHeader(from: &r)
        let header = try ICMessageHeader(from: &r)
        let body = Array(r.rest)
        guard Int(header.messageSize) <= body.count else {
            throw .truncated(structure: "IC \(header.messageType) body (icmsgsize \(header.messageSize))",
                             needed: headerSize + Int(header.messageSize), available: bytes.count)
        }
        return ICFrame(pipe: pipe, header: header, body: body)
    }

    public func encode() -> [UInt8] {
        var w = ICByteWriter(capacity: Self.headerSize + body.count)
        pipe.encode(into: &w)
        header.encode(into: &w)
        w.bytes(body)
        return w.bytes
    }
}
