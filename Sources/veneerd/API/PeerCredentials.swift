#if canImport(Glibc)
import Glibc
#endif
import HummingbirdCore
import Logging
import NIOCore

/// Who is at the other end of an accepted UNIX socket connection (SO_PEERCRED).
public struct PeerCredentials: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// Linux's `struct ucred` (Glibc exposes it only under _GNU_SOURCE): pid_t, uid_t, gid_t,
    /// three 32-bit members, 12 bytes, no padding.
    struct LinuxUcred: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// Reads SO_PEERCRED through NIO's socket option provider.
    ///
    /// Invariant for the unsafe read: SO_PEERCRED's value is a `struct ucred`, which NIO reads
    /// with getsockopt into storage of `MemoryLayout<LinuxUcred>.size` (12) bytes, the layout above.
    public static func read(from channel: any Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(PeerCredentialsError.notASocket)
        }
        let future: EventLoopFuture<LinuxUcred> = provider.unsafeGetSocketOption(
            level: NIOBSDSocket.OptionLevel.socket, name: NIOBSDSocket.Option(rawValue: SO_PEERCRED))
        return future.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }
}

enum PeerCredentialsError: Error, CustomStringConvertible {
    case notASocket
    var description: String { "the connection is not a socket with peer credentials" }
}

/// Which peers may use the API: veneerd's own uid and root.
public struct PeerPolicy: Sendable {
    public var allowedUIDs: Set<UInt32>

    public init(allowedUIDs: Set<UInt32>) {
        self.allowedUIDs = allowedUIDs
    }

    public static var sameUserOrRoot: PeerPolicy { PeerPolicy(allowedUIDs: [getuid(), 0]) }

    public func allows(_ peer: PeerCredentials) -> Bool { allowedUIDs.contains(peer.uid) }
}

/// The first handler of every accepted connection: reads the peer's credentials as it becomes
/// active and closes the connection, before any byte reaches the HTTP decoder, when the peer's
/// uid is not allowed (or its credentials cannot be read). Bytes that arrive before the
/// verdict are held and passed on once the peer is allowed.
public final class PeerCredentialsHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny
    public typealias InboundOut = NIOAny

    public typealias Reader = @Sendable (any Channel) -> EventLoopFuture<PeerCredentials>

    private enum Verdict { case unchecked, pending, allowed, refused }

    private let policy: PeerPolicy
    private let reader: Reader
    private let logger: Logger
    private var verdict = Verdict.unchecked
    private var held: [NIOAny] = []

    public init(policy: PeerPolicy, logger: Logger, reader: @escaping Reader = PeerCredentials.read(from:)) {
        self.policy = policy
        self.reader = reader
        self.logger = logger
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { check(context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        check(context)
        context.fireChannelActive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch verdict {
        case .allowed: context.fireChannelRead(data)
        case .unchecked, .pending: held.append(data)
        case .refused: break
        }
    }

    private func check(_ context: ChannelHandlerContext) {
        guard verdict == .unchecked else { return }
        verdict = .pending
        // The verdict is applied on the channel's event loop, where `self` and `context` live.
        let loopBound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        reader(context.channel).hop(to: context.eventLoop).whenComplete { result in
            loopBound.value.handler.apply(result, loopBound.value.context)
        }
    }

    private func apply(_ result: Result<PeerCredentials, any Error>, _ context: ChannelHandlerContext) {
        switch result {
        case .success(let peer) where policy.allows(peer):
            verdict = .allowed
            let pending = held
            held = []
            for data in pending { context.fireChannelRead(data) }
            if !pending.isEmpty { context.fireChannelReadComplete() }
        case .success(let peer):
            refuse(context, "refused a connection from uid \(peer.uid) (pid \(peer.pid)): only uids \(policy.allowedUIDs.sorted()) may use veneerd")
        case .failure(let error):
            refuse(context, "refused a connection whose peer credentials could not be read: \(error)")
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ message: String) {
        verdict = .refused
        held = []
        logger.warning("\(message)")
        context.close(promise: nil)
    }
}

/// Wraps a Hummingbird child channel so every accepted connection passes the peer check first.
struct PeerCheckedChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value

    let inner: Inner
    let policy: PeerPolicy

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(PeerCredentialsHandler(policy: policy, logger: logger))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}
