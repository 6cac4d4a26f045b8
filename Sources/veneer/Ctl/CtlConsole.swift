import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import VeneerHost
import VeneerManagement

struct CtlConsole: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Attach to a VM's serial console (recent output first); detach with Ctrl-].",
        discussion: """
            On a terminal, keys go to the guest as typed (Ctrl-C included) until Ctrl-] detaches; the \
            VM keeps running. With a pipe on stdin, its bytes are sent as they come, a 0x1d byte \
            detaches, and at its end output keeps streaming until the VM's console ends.
            """)

    @OptionGroup var vm: VMNameArgument
    @OptionGroup var options: CtlOptions

    func run() throws {
        let (vm, options) = (vm, options)
        try runToCompletion {
            // Ask first: a VM that is not there or has no worker gets the API's own error line
            // (the upgrade's refusal carries no problem detail through the WebSocket client).
            try await VeneerdClient.with(socket: options.socketPath) { client in
                let details = try client.decode(VMDetails.self, try await client.send(.GET, vm.path), what: "info")
                guard details.worker != nil else {
                    throw CtlFailure(.conflict, "VM '\(vm.name)' is \(details.summary.state.rawValue): its console needs a running worker")
                }
            }
            let interactive = TerminalMode.enterRaw()
            defer { TerminalMode.restore() }
            let newline = interactive ? "\r\n" : "\n"
            writeAll(2, "Attached to VM '\(vm.name)'; detach with Ctrl-]\(newline)")
            let end = try await ConsoleSession(socketPath: options.socketPath, path: "\(vm.path)/console").run()
            TerminalMode.restore()
            switch end {
            case .detached: writeAll(2, "\nDetached from VM '\(vm.name)' (it keeps running)\n")
            case .closed(let reason): writeAll(2, "\nThe console of VM '\(vm.name)' ended\(reason.isEmpty ? "" : ": \(reason)")\n")
            }
        }
    }
}

/// One console attachment: a WebSocket (NIO's client upgrader over the UNIX socket) whose binary
/// frames carry the guest's output in and the user's keys out.
struct ConsoleSession {
    let socketPath: String
    let path: String

    /// Ctrl-]: the telnet/virsh convention, rarely needed by a guest.
    static let detachByte: UInt8 = 0x1D
    static let maxFrameBytes = 1 << 20

    enum End: Sendable {
        case detached
        case closed(reason: String)
    }

    private enum Upgrade: Sendable {
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case refused
    }

    private enum Part: Sendable {
        case end(End)
        case inputEnded
    }

    func run() async throws(CtlFailure) -> End {
        let channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>
        do {
            switch try await connect().get() {
            case .websocket(let upgraded): channel = upgraded
            case .refused: throw CtlFailure(.failed, "veneerd refused the console connection for \(path)")
            }
        } catch let failure as CtlFailure {
            throw failure
        } catch {
            throw CtlFailure(.cannotConnect, "cannot connect to veneerd's console at \(socketPath): \(error)")
        }
        do {
            return try await channel.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Part.self) { group in
                    group.addTask { try await Self.relayOutput(inbound, outbound) }
                    group.addTask { try await Self.relayInput(outbound) }
                    while let part = try await group.next() {
                        if case .end(let end) = part {
                            group.cancelAll()
                            return end
                        }
                    }
                    return .closed(reason: "")
                }
            }
        } catch {
            throw CtlFailure(.failed, "the console connection to veneerd broke: \(error)")
        }
    }

    private func connect() async throws -> EventLoopFuture<Upgrade> {
        let path = path
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(unixDomainSocketPath: socketPath) { channel in
            channel.eventLoop.makeCompletedFuture {
                let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(maxFrameSize: Self.maxFrameBytes) { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        Upgrade.websocket(try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel))
                    }
                }
                var headers = HTTPHeaders()
                headers.add(name: "Host", value: "veneerd")
                headers.add(name: "Content-Length", value: "0")
                let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
                let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                    upgradeRequestHead: head, upgraders: [upgrader],
                    notUpgradingCompletionHandler: { channel in channel.eventLoop.makeCompletedFuture { Upgrade.refused } })
                return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                    configuration: .init(upgradeConfiguration: configuration))
            }
        }
    }

    /// Guest output to stdout until veneerd closes the console.
    private static func relayOutput(_ inbound: NIOAsyncChannelInboundStream<WebSocketFrame>,
                                    _ outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>) async throws -> Part {
        for try await frame in inbound {
            switch frame.opcode {
            case .binary, .text, .continuation:
                let data = frame.unmaskedData
                try FileHandle.standardOutput.write(contentsOf: Data(data.readableBytesView))
            case .ping:
                try await outbound.write(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData))
            case .connectionClose:
                var data = frame.unmaskedData
                _ = data.readInteger(as: UInt16.self)  // the close code; the reason follows
                return .end(.closed(reason: data.readString(length: data.readableBytes) ?? ""))
            default:
                break
            }
        }
        return .end(.closed(reason: ""))
    }

    /// stdin to the guest until the detach byte (then a close frame); at stdin's end, input stops
    /// and output goes on.
    private static func relayInput(_ outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>) async throws -> Part {
        for await chunk in StandardInput.chunks() {
            let detach = chunk.firstIndex(of: detachByte)
            let keys = chunk[..<(detach ?? chunk.endIndex)]
            if !keys.isEmpty {
                try await outbound.write(WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: ByteBuffer(bytes: keys)))
            }
            if detach != nil {
                var reason = ByteBuffer()
                reason.write(webSocketErrorCode: .normalClosure)
                try await outbound.write(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: reason))
                return .end(.detached)
            }
        }
        return .inputEnded
    }
}

/// stdin as an async stream of chunks, read on its own thread so a blocking read never holds one
/// of the concurrency pool's few threads.
enum StandardInput {
    static func chunks() -> AsyncStream<[UInt8]> {
        AsyncStream { continuation in
            let reader = Thread {
                while true {
                    let data = FileHandle.standardInput.availableData
                    if data.isEmpty { break }
                    continuation.yield(Array(data))
                }
                continuation.finish()
            }
            reader.start()
        }
    }
}
