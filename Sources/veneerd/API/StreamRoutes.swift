import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOWebSocket
import ServiceLifecycle
import VeneerManagement

/// The long-lived routes: the event stream (ndjson) and the console (WebSocket). Both end when
/// veneerd shuts down gracefully, so SIGTERM does not wait on a client that never leaves.
extension VeneerdAPI {
    func eventStream() async -> Response {
        let events = await manager.events()
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        headers[.cacheControl] = "no-store"
        let body = ResponseBody { writer in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            for try await event in events.cancelOnGracefulShutdown() {
                var line = try encoder.encode(event)
                line.append(0x0A)
                try await writer.write(ByteBuffer(bytes: line))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// Before the upgrade: a WebSocket request for a VM whose worker runs (404/409 otherwise,
    /// 426 for a plain GET).
    func consoleShouldUpgrade(_ request: Request, _ context: APIContext) async throws -> RouterShouldUpgrade {
        let name = try Self.vmName(context)
        guard request.headers[.upgrade]?.lowercased() == "websocket" else {
            var problem = Problem(.upgradeRequired, status: HTTPResponse.Status(code: 426, reasonPhrase: "Upgrade Required"),
                                  detail: "the console is a WebSocket: send Upgrade: websocket")
            problem.field = "Upgrade"
            throw problem
        }
        let details = try await manager.info(name)
        guard details.worker != nil else {
            throw Problem(.invalidTransition, status: .conflict,
                          detail: "VM '\(name)' is \(details.summary.state.rawValue): its console needs a running worker",
                          state: details.summary.state.rawValue)
        }
        return .upgrade([:])
    }

    /// Largest WebSocket message accepted from a console client.
    static let maxConsoleMessageBytes = 64 * 1024

    /// Bridges the WebSocket and the VM's console: binary frames both ways (text frames from
    /// the client are sent as their UTF-8 bytes). Detaching leaves the VM running.
    func bridgeConsole(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, context: WebSocketRouterContext<APIContext>) async throws {
        let name: String
        let attachment: ConsoleAttachment
        do {
            name = try Self.vmName(context.requestContext)
            attachment = try await manager.console(name)
        } catch {
            try await outbound.close(.unexpectedServerError, reason: "console unavailable: \(error)")
            return
        }
        let logger = context.logger
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await chunk in attachment.output {
                            try await outbound.write(.binary(ByteBuffer(bytes: chunk)))
                        }
                        try await outbound.close(.normalClosure, reason: "the console ended")
                    }
                    group.addTask {
                        for try await message in inbound.messages(maxSize: Self.maxConsoleMessageBytes) {
                            switch message {
                            case .binary(let buffer): await attachment.send(Array(buffer.readableBytesView))
                            case .text(let text): await attachment.send(Array(text.utf8))
                            }
                        }
                    }
                    // Either side ending ends the bridge.
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            logger.debug("console bridge ended", metadata: ["vm": "\(name)", "error": "\(error)"])
        }
        await attachment.close()
    }
}
