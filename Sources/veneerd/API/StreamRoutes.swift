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

    /// Before the upgrade: the name must be valid (a failed handshake is answered 400 by the
    /// WebSocket layer) and a plain GET gets 426. Whether the VM can give a console is answered
    /// after the upgrade, as a close code (`closeCode(for:)`), so the client learns why.
    func consoleShouldUpgrade(_ request: Request, _ context: APIContext) async throws -> RouterShouldUpgrade {
        _ = try Self.vmName(context)
        guard request.headers[.upgrade]?.lowercased() == "websocket" else {
            var problem = Problem(.upgradeRequired, status: HTTPResponse.Status(code: 426, reasonPhrase: "Upgrade Required"),
                                  detail: "the console is a WebSocket: send Upgrade: websocket")
            problem.field = "Upgrade"
            throw problem
        }
        return .upgrade([:])
    }

    /// A console that cannot be attached closes the WebSocket with 4000 + the HTTP status the
    /// same error has elsewhere (4404 no such VM, 4409 not running), the problem's detail as the reason.
    static func closeCode(for error: any Error) -> (code: WebSocketErrorCode, reason: String) {
        let problem: Problem
        switch error {
        case let error as Problem: problem = error
        case let error as ManagementError: problem = Problem(error)
        default: problem = Problem(.failed, status: .internalServerError, detail: "\(error)")
        }
        // A close frame's reason is at most 123 bytes.
        var reason = problem.detail
        while reason.utf8.count > 123 { reason.removeLast() }
        return (WebSocketErrorCode(codeNumber: 4000 + problem.statusCode), reason)
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
            let (code, reason) = Self.closeCode(for: error)
            try await outbound.close(code, reason: reason)
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
