import FoundationEssentials
import NIOCore
import NIOPosix
import Synchronization
import WorkerControlProtocol

/// A client of one worker's control socket (`WorkerControl`): one connection per request, so a
/// slow or stuck request never holds up another. `events` and `console` keep their connection
/// open as a stream until closed.
struct WorkerClient: Sendable {
    let socketPath: String
    /// The VM's name, for messages.
    let name: String

    /// The longest response line accepted (the worker's own backlog bound for request clients).
    static let maxResponseBytes = 16 << 20

    /// Sends one request and returns the worker's answer; a refusal (`ok` false) throws
    /// `.worker` with the worker's error, a transport problem `.host`, no answer in time a
    /// `.worker(.timeout)`.
    func call(_ op: WorkerRequest.Op, device: String? = nil, body: String? = nil, force: Bool? = nil, reason: String? = nil,
              timeout: Duration = .seconds(15)) async throws(ManagementError) -> WorkerResponse {
        let request = WorkerRequest(id: 1, op: op, device: device, body: body, force: force, reason: reason)
        let session = try await WorkerStream.open(socketPath: socketPath, name: name, request: request, timeout: timeout)
        session.close()
        return session.response
    }

    /// The worker's state changes, starting with its current state; the stream ends when the
    /// worker closes the connection (it exits) or `close` is called.
    func events() async throws(ManagementError) -> (events: AsyncStream<WorkerEvent>, close: @Sendable () -> Void) {
        let session = try await WorkerStream.open(socketPath: socketPath, name: name,
                                                  request: WorkerRequest(id: 1, op: .events), timeout: .seconds(10))
        let (events, continuation) = AsyncStream<WorkerEvent>.makeStream()
        let task = Task {
            var lines = LineBuffer(limit: Self.maxResponseBytes)
            for await chunk in session.rest {
                lines.append(chunk)
                do {
                    while let line = try lines.nextLine() {
                        guard let event = try? JSONDecoder().decode(WorkerEvent.self, from: Data(line)) else { continue }
                        continuation.yield(event)
                    }
                } catch {
                    break
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in
            task.cancel()
            session.close()
        }
        return (events, { session.close() })
    }

    /// The console stream: the worker's ring of recent output, then live output.
    func console() async throws(ManagementError) -> ConsoleAttachment {
        let session = try await WorkerStream.open(socketPath: socketPath, name: name,
                                                  request: WorkerRequest(id: 1, op: .console), timeout: .seconds(10))
        return ConsoleAttachment(output: session.rest, send: { bytes in await session.send(bytes) }, close: { session.close() })
    }
}

/// One connection: the request line is sent, the first line back is the response, and whatever
/// follows (console bytes or event lines) is `rest`.
final class WorkerStream: Sendable {
    let response: WorkerResponse
    let rest: AsyncStream<[UInt8]>
    private let channel: any Channel
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    private init(response: WorkerResponse, rest: AsyncStream<[UInt8]>, channel: any Channel, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.response = response
        self.rest = rest
        self.channel = channel
        self.outbound = outbound
    }

    func send(_ bytes: [UInt8]) async {
        // A console whose worker went away: the bytes have nowhere to go, and the output stream ends.
        try? await outbound.write(ByteBuffer(bytes: bytes))
    }

    func close() { channel.close(promise: nil) }

    private enum Handshake: Sendable {
        case response([UInt8], NIOAsyncChannelOutboundWriter<ByteBuffer>)
        case failure(ManagementError)
    }

    /// Resumes a continuation once, whichever of the reader and the timeout gets there first.
    private final class Once: Sendable {
        private let continuation: Mutex<CheckedContinuation<Handshake, Never>?>
        init(_ continuation: CheckedContinuation<Handshake, Never>) { self.continuation = Mutex(continuation) }
        func resume(_ value: Handshake) {
            continuation.withLock { c in
                c?.resume(returning: value)
                c = nil
            }
        }
    }

    static func open(socketPath: String, name: String, request: WorkerRequest, timeout: Duration) async throws(ManagementError) -> WorkerStream {
        let async: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            async = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(2))
                .connect(unixDomainSocketPath: socketPath) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw .host("VM '\(name)': cannot connect to the worker's control socket '\(socketPath)': \(error)")
        }
        let requestLine: [UInt8]
        do { requestLine = Array(try JSONEncoder().encode(request)) + [0x0A] } catch {
            async.channel.close(promise: nil)
            throw .host("VM '\(name)': cannot encode a \(request.op.rawValue) request: \(error)")
        }
        let channel = async.channel
        let (rest, restContinuation) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        let handshake = await withCheckedContinuation { (continuation: CheckedContinuation<Handshake, Never>) in
            let once = Once(continuation)
            let timer = Task {
                try? await Task.sleep(for: timeout)
                guard !Task.isCancelled else { return }
                once.resume(.failure(.worker(WorkerError(.timeout, "VM '\(name)': the worker did not answer \(request.op.rawValue) within \(timeout)"))))
                channel.close(promise: nil)
            }
            Task {
                var answered = false
                do {
                    try await async.executeThenClose { inbound, outbound in
                        try await outbound.write(ByteBuffer(bytes: requestLine))
                        var lines = LineBuffer(limit: WorkerClient.maxResponseBytes)
                        for try await var buffer in inbound {
                            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
                            if answered {
                                restContinuation.yield(bytes)
                                continue
                            }
                            lines.append(bytes)
                            if let line = try lines.nextLine() {
                                answered = true
                                timer.cancel()
                                once.resume(.response(line, outbound))
                                let remainder = lines.takeRemainder()
                                if !remainder.isEmpty { restContinuation.yield(remainder) }
                            }
                        }
                    }
                } catch {
                    if !answered { once.resume(.failure(.host("VM '\(name)': the worker's control connection failed: \(error)"))) }
                }
                if !answered { once.resume(.failure(.host("VM '\(name)': the worker closed its control connection without answering \(request.op.rawValue)"))) }
                timer.cancel()
                restContinuation.finish()
            }
        }
        switch handshake {
        case .failure(let error):
            channel.close(promise: nil)
            throw error
        case .response(let line, let outbound):
            let response: WorkerResponse
            do { response = try JSONDecoder().decode(WorkerResponse.self, from: Data(line)) } catch {
                channel.close(promise: nil)
                throw .host("VM '\(name)': the worker's answer to \(request.op.rawValue) is not a response: \(error)")
            }
            guard response.ok else {
                channel.close(promise: nil)
                throw .worker(response.error ?? WorkerError(.failed, "VM '\(name)': the worker refused \(request.op.rawValue) without saying why"))
            }
            let stream = WorkerStream(response: response, rest: rest, channel: channel, outbound: outbound)
            restContinuation.onTermination = { _ in channel.close(promise: nil) }
            return stream
        }
    }
}
