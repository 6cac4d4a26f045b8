import Hummingbird
import HummingbirdWebSocket

/// The request context of every veneerd route: Hummingbird's core storage plus the WebSocket
/// handler slot the console route's upgrade fills in.
public struct APIContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<APIContext>

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
    }

    /// Bodies are read explicitly with their route's limit (`RequestBodies`); this bounds any
    /// other use of Hummingbird's decoding at the JSON limit.
    public var maxUploadSize: Int { RequestBodies.jsonLimit }
}
