#if canImport(Glibc)
import Glibc
#endif
import NetlinkProtocol

/// A request the kernel refused (or that could not be exchanged): what was asked, errno, and the
/// kernel's own extended-ack text when it gave one.
public struct NetlinkFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var what: String
    /// Positive errno; 0 when the failure is a malformed or missing reply.
    public var errno: Int32
    public var detail: String?

    public init(what: String, errno: Int32, detail: String? = nil) {
        self.what = what
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        var text = "\(what): "
        text += errno == 0 ? "bad reply" : errnoText(errno)
        if errno == EPERM || errno == EACCES { text += " (needs CAP_NET_ADMIN)" }
        if let detail, !detail.isEmpty { text += " (\(detail))" }
        return text
    }

    var networkError: NetworkError { NetworkError(description) }
}

func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}

/// A NETLINK_ROUTE socket, bound to the network namespace of the thread that opened it. Requests
/// are synchronous: send, then read replies of the same sequence number until the acknowledgement
/// (or the end of a dump). Not shared between threads; open one per job.
public final class RouteNetlink {
    private static let afNetlink: Int32 = 16
    private static let solNetlink: Int32 = 270
    private static let netlinkCapAck: Int32 = 10
    private static let netlinkExtAck: Int32 = 11
    /// A reply the kernel owes but never sends would otherwise hang the caller.
    private static let replyTimeoutSeconds = 10

    private let fd: Int32
    private var sequence: UInt32 = 0
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)

    public init() throws(NetlinkFailure) {
        let fd = socket(Self.afNetlink, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw NetlinkFailure(what: "opening a route netlink socket", errno: errno) }
        var one: Int32 = 1
        let intSize = socklen_t(MemoryLayout<Int32>.size)
        // Best effort: kernels without extended ack still answer, only less precisely.
        _ = setsockopt(fd, Self.solNetlink, Self.netlinkExtAck, &one, intSize)
        _ = setsockopt(fd, Self.solNetlink, Self.netlinkCapAck, &one, intSize)
        var timeout = timeval(tv_sec: Self.replyTimeoutSeconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        self.fd = fd
    }

    deinit { Glibc.close(fd) }

    public func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    /// Sends a request built with `nextSequence()` and waits for its acknowledgement.
    public func perform(_ request: NetlinkMessage, what: String) throws(NetlinkFailure) {
        _ = try exchange(request, what: what)
    }

    /// Sends a dump request and returns every message of the dump.
    public func dump(_ request: NetlinkMessage, what: String) throws(NetlinkFailure) -> [NetlinkMessage] {
        try exchange(request, what: what)
    }

    public func links() throws(NetlinkFailure) -> [LinkMessage] {
        let messages = try dump(RouteRequest.dumpLinks(sequence: nextSequence()), what: "listing interfaces")
        return try decodeAll(messages, type: Netlink.MessageType.newLink, what: "listing interfaces") { m throws(NetlinkDecodeError) in try LinkMessage(decoding: m) }
    }

    public func link(named name: String) throws(NetlinkFailure) -> LinkMessage? {
        try links().first { $0.name == name }
    }

    /// Bridge ports with their VLANs (the AF_BRIDGE view).
    public func bridgePorts() throws(NetlinkFailure) -> [LinkMessage] {
        let messages = try dump(RouteRequest.dumpLinks(bridgeVLANs: true, sequence: nextSequence()), what: "listing bridge ports")
        return try decodeAll(messages, type: Netlink.MessageType.newLink, what: "listing bridge ports") { m throws(NetlinkDecodeError) in try LinkMessage(decoding: m) }
    }

    public func addresses() throws(NetlinkFailure) -> [AddressMessage] {
        let messages = try dump(RouteRequest.dumpAddresses(sequence: nextSequence()), what: "listing addresses")
        return try decodeAll(messages, type: Netlink.MessageType.newAddress, what: "listing addresses") { m throws(NetlinkDecodeError) in try AddressMessage(decoding: m) }
    }

    private func decodeAll<T>(_ messages: [NetlinkMessage], type: UInt16, what: String,
                              _ decode: (NetlinkMessage) throws(NetlinkDecodeError) -> T) throws(NetlinkFailure) -> [T] {
        var out: [T] = []
        for message in messages where message.type == type {
            do { out.append(try decode(message)) } catch { throw NetlinkFailure(what: what, errno: 0, detail: error.message) }
        }
        return out
    }

    private func exchange(_ request: NetlinkMessage, what: String) throws(NetlinkFailure) -> [NetlinkMessage] {
        let bytes = request.encoded
        let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw NetlinkFailure(what: what, errno: sent < 0 ? errno : EIO, detail: "sending the request") }
        var collected: [NetlinkMessage] = []
        while true {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received < 0 {
                if errno == EINTR { continue }
                let code = errno
                throw NetlinkFailure(what: what, errno: code, detail: code == EAGAIN ? "no reply from the kernel" : "reading the reply")
            }
            let messages: [NetlinkMessage]
            do { messages = try NetlinkMessage.parseAll(buffer[0..<received]) } catch {
                throw NetlinkFailure(what: what, errno: 0, detail: error.message)
            }
            for message in messages where message.sequence == request.sequence {
                switch message.type {
                case Netlink.MessageType.error:
                    let reply: NetlinkErrorReply
                    do { reply = try NetlinkErrorReply(message) } catch { throw NetlinkFailure(what: what, errno: 0, detail: error.message) }
                    if reply.errno != 0 { throw NetlinkFailure(what: what, errno: reply.errno, detail: reply.kernelMessage) }
                    return collected
                case Netlink.MessageType.done:
                    if message.flags & Netlink.Flags.dumpInterrupted != 0 {
                        throw NetlinkFailure(what: what, errno: EAGAIN, detail: "the dump changed while it was read; try again")
                    }
                    return collected
                default:
                    collected.append(message)
                }
            }
        }
    }
}
