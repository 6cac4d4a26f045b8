#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore

/// Serves a `VeneerdAPI` over HTTP/1.1 on a UNIX socket (WebSocket upgrades for the console),
/// every connection passing the peer-credentials check first.
public struct APIServer: Sendable {
    public var socketPath: String
    /// Group allowed to connect (socket mode 0660); nil for owner only (0600).
    public var socketGroup: gid_t?
    public var policy: PeerPolicy

    public init(socketPath: String, socketGroup: gid_t? = nil, policy: PeerPolicy = .sameUserOrRoot) {
        self.socketPath = socketPath
        self.socketGroup = socketGroup
        self.policy = policy
    }

    /// Largest WebSocket frame accepted (console input arrives in small frames).
    static let maxWebSocketFrameBytes = 1 << 16

    /// Checks the socket path (stale replaced, live refused) and builds the application.
    /// `onReady` runs once the socket is bound and secured.
    public func makeApplication(api: VeneerdAPI, logger: Logger, onReady: @escaping @Sendable () async -> Void = {}) throws(SocketFile.Error)
        -> some ApplicationProtocol
    {
        try SocketFile.prepare(socketPath)
        let router = api.makeRouter()
        let webSocketResponder = router.buildResponder()
        let policy = self.policy
        let server = HTTPServerBuilder { responder in
            PeerCheckedChildChannel(
                inner: HTTP1WebSocketUpgradeChannel(
                    responder: responder,
                    webSocketResponder: webSocketResponder,
                    configuration: .init(ws: .init(maxFrameSize: Self.maxWebSocketFrameBytes))
                ),
                policy: policy
            )
        }
        let path = socketPath
        let group = socketGroup
        return Application(
            router: router,
            server: server,
            configuration: .init(address: .unixDomainSocket(path: path), serverName: "veneerd"),
            onServerRunning: { _ in
                do {
                    try SocketFile.secure(path, group: group)
                } catch {
                    // The socket keeps the mode the umask gave it (veneerd runs with 077: owner only).
                    logger.error("\(error)")
                }
                logger.info("veneerd is serving", metadata: ["socket": "\(path)"])
                await onReady()
            },
            logger: logger
        )
    }
}
